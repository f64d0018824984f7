/** A transport that records what is sent and delivers nothing: for driving one role by hand. */
import { Limits, type Message, Transport } from "@synod/core"
import { Effect, Layer, Queue } from "effect"

export const recording = () => {
  const sent: Array<Message.Envelope> = []
  const layer = Layer.succeed(
    Transport.Transport,
    Transport.Transport.of({
      maxMessageBytes: Limits.defaultMaxMessageBytes,
      send: (_to, env) => Effect.sync(() => void sent.push(env)),
      listen: () => Queue.unbounded<Message.Envelope>()
    })
  )
  return { sent, layer }
}
