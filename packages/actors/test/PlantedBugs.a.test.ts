/** The first half of the planted bugs' budgets (plantedBugs.ts); PlantedBugs.b.test.ts runs the rest. */
import { caught, firstHalf } from "./plantedBugs.ts"

caught(firstHalf)
