/** The second half of the planted bugs' budgets (plantedBugs.ts); PlantedBugs.a.test.ts runs the first. */
import { caught, secondHalf } from "./plantedBugs.ts"

caught(secondHalf)
