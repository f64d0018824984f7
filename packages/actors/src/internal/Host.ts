/**
 * The one host every role runs on, in the manner of etcd-raft's `RawNode` and `Ready`.
 *
 * A role is a core: its state as plain data and its decisions as code without I/O. The
 * core is fed one input at a time — a message of its inbound union, a tick, a child's
 * outcome — and writes what must happen into its `Outbox`: records to persist, messages
 * to send, child fibers to start or stop, envelopes to hand to a child, and events for
 * observers. The host does the I/O, in the same order for every role:
 *
 * 1. take every input waiting (mailbox, ticks, children's outcomes) and feed each to the core;
 * 2. persist the records of the whole batch with one write (group commit);
 * 3. hand the events to the observers (logs, metrics, the simulator's checker);
 * 4. stop children, start children, hand envelopes to children;
 * 5. send the messages.
 *
 * So nothing is sent and no child is started before the records it depends on are durable
 * (an acceptor's promise before its P1b, a leader's round before its scout's P1a): that
 * rule lives here and nowhere else. Children (the leader's scouts and commanders) are
 * fibers of the host's scope; stopping one interrupts it, and its outcome comes back to
 * the core as an input.
 *
 * Internal: not exported from the package.
 */
import { type Address, HopLog, type Message, Trace, Transport, Trusted } from "@synod/core"
import { Clock, Effect, Fiber, Queue, type Scope, type Tracer } from "effect"

/** An input's name in the hop log: a message's tag, or a local input's. */
const hopTag = (input: unknown): string => {
  const i = input as { readonly _tag?: string; readonly message?: { readonly _tag?: string } }
  return i.message?._tag ?? i._tag ?? "?"
}

export interface Outbound {
  readonly to: Address.Address
  readonly message: Message.Message
}

/** What a core decided since the host last drained it. */
export interface Ready<Rec, Spec, Ev, Job = never> {
  readonly persist: ReadonlyArray<Rec>
  /** Computations to run off the loop (`Options.work`); each result comes back as an input. */
  readonly work: ReadonlyArray<Job>
  readonly send: ReadonlyArray<Outbound>
  readonly stop: ReadonlyArray<string>
  readonly start: ReadonlyArray<{ readonly key: string; readonly spec: Spec }>
  readonly route: ReadonlyArray<{ readonly key: string; readonly envelope: Message.Envelope }>
  readonly events: ReadonlyArray<Ev>
}

/** Where a core writes what must happen; the host drains it after each batch of inputs. */
export class Outbox<Rec = never, Spec = never, Ev = never, Job = never> {
  private ready = Outbox.empty<Rec, Spec, Ev, Job>()

  private static empty<Rec, Spec, Ev, Job>() {
    return {
      persist: [] as Array<Rec>,
      work: [] as Array<Job>,
      send: [] as Array<Outbound>,
      stop: [] as Array<string>,
      start: [] as Array<{ readonly key: string; readonly spec: Spec }>,
      route: [] as Array<{ readonly key: string; readonly envelope: Message.Envelope }>,
      events: [] as Array<Ev>
    }
  }

  persist(record: Rec): void {
    this.ready.persist.push(record)
  }
  work(job: Job): void {
    this.ready.work.push(job)
  }
  send(to: Address.Address, message: Message.Message): void {
    this.ready.send.push({ to, message })
  }
  stop(key: string): void {
    this.ready.stop.push(key)
  }
  start(key: string, spec: Spec): void {
    this.ready.start.push({ key, spec })
  }
  route(key: string, envelope: Message.Envelope): void {
    this.ready.route.push({ key, envelope })
  }
  event(event: Ev): void {
    this.ready.events.push(event)
  }

  /** Everything written since the last drain. */
  drain(): Ready<Rec, Spec, Ev, Job> {
    const ready = this.ready
    this.ready = Outbox.empty()
    return ready
  }
}

export interface Core<In, Rec, Spec, Ev, Job = never> {
  readonly out: Outbox<Rec, Spec, Ev, Job>
  step(input: In): void
  /** A time (on the host's clock) at which the core wants a `wake` input before the next tick. */
  wakeAt?(): number | undefined
}

export interface Options<Inbound extends Message.Message, In, Rec, Spec, Ev, Job = never> {
  /** The role's address: the host listens there and sends from there. */
  readonly self: Address.Address
  readonly core: Core<In, Rec, Spec, Ev, Job>
  /** The role's inbound union: messages of other tags are not for this role and are dropped. */
  readonly accepts: (message: Message.Message) => message is Inbound
  /** A message of the inbound union as the core's input. */
  readonly message: (from: Address.Address, message: Inbound) => In
  /** A periodic tick, if the role has timers. */
  readonly tick?: { readonly everyMs: number; readonly input: In }
  /** The input fed when the core's `wakeAt` comes before the next tick. */
  readonly wake?: In
  /** Makes the batch's records durable (one write); required when the core persists anything. */
  readonly persist?: (records: ReadonlyArray<Rec>) => Effect.Effect<void, unknown>
  /**
   * Send first, persist after: for a role whose records guard none of the messages of the
   * same batch (the replica: its snapshot, which only its next Progress reports, after
   * `persisted`); for an acceptor it is the planted B2.
   */
  readonly persistAfterSend?: boolean
  /**
   * Persist off the loop: for records each of which supersedes the ones before (the
   * replica's snapshots, each the whole state). A writer fiber saves the latest record
   * asked for while the loop goes on stepping; records asked for while it writes are
   * replaced by newer ones and never written. `persisted` is fed on a later turn, once
   * the write is durable. Implies `persistAfterSend`.
   */
  readonly persistInBackground?: boolean
  /**
   * Pipelined persistence, for a role without children (the acceptor): the loop hands each
   * batch's records, events and messages to a writer fiber and goes on stepping the next
   * inputs while they are made durable. The writer takes every batch waiting, makes their
   * records durable in one `persist` (group commit across turns), then observes their
   * events and sends their messages, in order: nothing leaves before the records of its
   * own batch and of every batch before it are durable, as without pipelining. At most
   * `pipelineDepth` batches wait; the loop waits beyond that. A batch that finds the writer
   * idle and none waiting is written by the loop itself, at once: handed over, it would
   * wait for the scheduler's next round, behind every fiber woken with the loop. Before a
   * write the transport is flushed (`Transport.flush`), and again after the messages it
   * released are sent: a write may block the event loop for its fsync.
   */
  readonly persistPipelined?: boolean
  /** The input fed to the core once a batch's records are durable (a storage completion). */
  readonly persisted?: (records: ReadonlyArray<Rec>) => In
  /**
   * Inputs fed from outside the role (the leader's resignation, a replica's configuration
   * change). With children they are merged with the rest; without, they are taken on the
   * loop's next turn (at the latest the next tick), so the mailbox keeps its direct path.
   */
  readonly control?: Queue.Dequeue<In>
  /** Runs a child the core started; its result is fed back to the core. */
  readonly child?: (spec: Spec, inbox: Queue.Dequeue<Message.Envelope>) => Effect.Effect<In>
  /** Observers: logs, metrics, the checker. Runs after the records are durable, before anything is sent. */
  readonly observe?: (events: ReadonlyArray<Ev>) => Effect.Effect<void>
  /** After each batch (gauges that follow the core's state). */
  readonly afterBatch?: Effect.Effect<void>
  /**
   * Runs a job the core asked for (`Outbox.work`) off the loop, one at a time in order, on
   * a worker fiber: for work too large for a step that no message waits on (the
   * replica's state digests). Each result is fed to the core on a later turn, like a
   * background write's `persisted`. At most `workBacklog` jobs wait; older ones are
   * dropped, so a job must be one the core can do without.
   */
  readonly work?: (job: Job) => Effect.Effect<In>
  /** The role's spans, when tracing is on (`Trace.Enabled`); never called when it is off. */
  readonly trace?: (spans: Trace.Spans) => Tracing
}

/**
 * What a role does with traced messages. The host ends the spans `received` starts once
 * the batch they came in is done — its records durable (each such span gets a child
 * `synod.persist` around the write) and its messages sent.
 */
export interface Tracing {
  /** A traced envelope arrived from `parent`'s span: the span of handling it, if any. */
  readonly received: (envelope: Message.Envelope, parent: Tracer.AnySpan) => Tracer.Span | undefined
  /** The span a message this role sends continues (its receiver's parent), if any. */
  readonly sending?: (message: Message.Message) => Tracer.AnySpan | undefined
  /** After each batch's messages are sent: for spans the role ends itself. */
  readonly flushed?: () => void
}

/**
 * What the loop's timer puts in the queue the loop waits on, to wake it: never a message
 * of any role (it is told apart by identity) and never stepped.
 */
const wakeUp: Message.Envelope = Object.freeze({ from: "host", to: "host", message: { _tag: "HostWakeUp" } }) as never

/** No spans: shared, so that a batch without any allocates nothing for them. */
const none: ReadonlyArray<Tracer.Span> = []

/** Jobs waiting for the worker (`Options.work`) before the oldest are dropped. */
const workBacklog = 4

/** Batches a pipelining role may have waiting for its writer before its loop waits too. */
const pipelineDepth = 64

/** Runs the core until the scope closes. */
export const run = <Inbound extends Message.Message, In, Rec, Spec, Ev, Job = never>(
  options: Options<Inbound, In, Rec, Spec, Ev, Job>
): Effect.Effect<void, Transport.TransportError, Transport.Transport | Scope.Scope> =>
  Effect.gen(function* () {
    const { core, self } = options
    const clock = yield* Clock.Clock
    const transport = yield* Transport.Transport
    const mailbox = yield* transport.listen(self)
    const children = new Map<
      string,
      { readonly inbox: Queue.Queue<Message.Envelope>; fiber?: Fiber.Fiber<unknown, unknown> }
    >()

    // tracing: decided once; when off, nothing below looks at a span
    const spans = options.trace !== undefined && (yield* Trace.Enabled) ? yield* Trace.spans : undefined
    const tracing = spans === undefined ? undefined : options.trace!(spans)
    /** Spans of the inputs stepped since the last flush, ended once their batch is done. */
    let open: Array<Tracer.Span> = []
    const traced = (env: Message.Envelope): void => {
      const parent = Trace.of(env)
      if (parent === undefined) return
      const span = tracing!.received(env, parent)
      if (span !== undefined) open.push(span)
    }
    /** The spans of the batch just stepped (never `open` itself: a job keeps what it is given). */
    const takeOpen = (): ReadonlyArray<Tracer.Span> => {
      if (open.length === 0) return none
      const taken = open
      open = []
      return taken
    }
    const endAll = (taken: ReadonlyArray<Tracer.Span>): void => {
      for (const span of taken) spans!.end(span)
    }
    /** `persist` with a `synod.persist` child span of each span waiting on it. */
    const persistTraced = <E>(
      persist: Effect.Effect<void, E>,
      waiting: ReadonlyArray<Tracer.Span>,
      records: number
    ): Effect.Effect<void, E> => {
      if (HopLog.enabled()) {
        persist = Effect.ensuring(
          Effect.andThen(
            Effect.sync(() => HopLog.mark(`persist+ ${self} ${records}`)),
            persist
          ),
          Effect.sync(() => HopLog.mark(`persist- ${self}`))
        )
      }
      if (waiting.length === 0) return persist
      return Effect.suspend(() => {
        const children = waiting.map((span) => spans!.start("synod.persist", span, { "synod.records": records }))
        return Effect.ensuring(
          persist,
          Effect.sync(() => endAll(children))
        )
      })
    }
    /** A message of this role, with its span attached when it continues one. */
    const envelope = (to: Address.Address, message: Message.Message): Message.Envelope => {
      const env = Trusted.envelope(self, to, message)
      if (tracing?.sending !== undefined) {
        const span = tracing.sending(message)
        if (span !== undefined) Trace.attach(env, span)
      }
      return env
    }

    /**
     * The one queue the loop waits on: the transport's mailbox, into which the host also
     * puts `wakeUp` (its timer's, and when an input of its own is waiting in `locals`), so
     * that one fiber hand-off brings anything to the loop.
     */
    const inbox = mailbox as unknown as Queue.Queue<Message.Envelope>
    /**
     * The host's own inputs: children's outcomes and, with children, control inputs. Not in
     * the mailbox itself, which drops what comes while it is full (a network message, which
     * the protocol resends, but an outcome is never sent again).
     */
    const locals: Array<In> = []
    const local = (input: In): void => {
      // one marker for the inputs waiting: each takes room in the mailbox, bounded over NATS
      if (locals.push(input) === 1) Queue.offerUnsafe(inbox, wakeUp)
    }
    const fromMailbox = (batch: ReadonlyArray<Message.Envelope>): Array<In> => {
      const mapped: Array<In> = []
      for (const env of batch) {
        if (env === wakeUp || !options.accepts(env.message)) continue
        if (tracing !== undefined) traced(env)
        mapped.push(options.message(env.from, env.message))
      }
      return mapped
    }
    // The loop waits on the mailbox alone: a message's hand-off to the loop is the only one
    // on its way (a queue merging the mailbox with the children's outcomes cost each message
    // to the leader a second fiber hand-off, a P2b two before it reached its commander).
    const take: Effect.Effect<ReadonlyArray<In>> = Effect.map(Queue.takeAll(inbox), fromMailbox)
    /** What is waiting now, without waiting (empty when nothing is). */
    const takeNow: Effect.Effect<ReadonlyArray<In>> = Effect.map(Queue.clear(inbox), fromMailbox)
    /** Where the loop's timer puts `wakeUp`: the queue the loop waits on. */
    const wakeUpQueue = inbox as Queue.Queue<unknown>
    if (options.child !== undefined && options.control !== undefined) {
      yield* Queue.takeAll(options.control).pipe(
        Effect.tap((batch) =>
          Effect.sync(() => {
            for (const input of batch) local(input)
          })
        ),
        Effect.forever,
        Effect.forkScoped
      )
    }

    /**
     * The loop's one timer: a fiber that sleeps until `timerAt` and then puts `wakeUp` in
     * the queue the loop waits on. Set only when the loop is about to wait on an empty
     * queue with a tick or a `wakeAt` ahead, and only anew when that time comes before
     * the one it is set for (a later one is met by waking early and setting it again).
     * One long-lived timer instead of a timeout raced against every wait: with one
     * client every input finds the queue empty, and the race forked a timer fiber, set
     * a Node timer and interrupted both, for each message each role took.
     */
    let timerAt = Number.POSITIVE_INFINITY
    let timer: Fiber.Fiber<void> | undefined
    const ring = Effect.sync(() => {
      timerAt = Number.POSITIVE_INFINITY
      timer = undefined
      Queue.offerUnsafe(wakeUpQueue, wakeUp)
    })
    const setTimer = (at: number): Effect.Effect<void> =>
      Effect.suspend(() => {
        if (at >= timerAt) return Effect.void
        const previous = timer
        timerAt = at
        const start = Effect.map(
          Effect.forkChild(Effect.andThen(Effect.sleep(Math.max(0, at - clock.currentTimeMillisUnsafe())), ring)),
          (fiber) => {
            timer = fiber
          }
        )
        return previous === undefined ? start : Effect.andThen(Fiber.interrupt(previous), start)
      })

    /** Background persistence: the latest record not yet taken by the writer, and finished writes. */
    let unwritten: ReadonlyArray<Rec> | undefined
    const completions: Array<In> = []
    const wakeWriter = yield* Queue.sliding<void>(1)
    if (options.persistInBackground) {
      const save = options.persist
      if (save === undefined) return yield* Effect.die(new Error(`${self}: nothing to persist with`))
      yield* Effect.forkScoped(
        Effect.forever(
          Effect.gen(function* () {
            yield* Queue.take(wakeWriter)
            const records = unwritten
            unwritten = undefined
            if (records === undefined) return
            yield* Effect.orDie(save(records))
            if (options.persisted !== undefined) completions.push(options.persisted(records))
          })
        )
      )
    }

    /** Background work: jobs waiting for the worker, which feeds results back through `completions`. */
    const jobsWaiting: Array<Job> = []
    const wakeWorker = yield* Queue.sliding<void>(1)
    if (options.work !== undefined) {
      const work = options.work
      yield* Effect.forkScoped(
        Effect.forever(
          Effect.gen(function* () {
            yield* Queue.take(wakeWorker)
            while (jobsWaiting.length > 0) completions.push(yield* work(jobsWaiting.shift()!))
          })
        )
      )
    }

    /** Pipelined persistence: batches the loop stepped, waiting for the writer. */
    type Stepped = {
      readonly persist: ReadonlyArray<Rec>
      readonly events: ReadonlyArray<Ev>
      readonly send: ReadonlyArray<{ readonly to: Address.Address; readonly message: Message.Message }>
      /** Tracing: the spans of the inputs of this batch. */
      readonly spans: ReadonlyArray<Tracer.Span>
    }
    const jobs = yield* Queue.bounded<Stepped>(pipelineDepth)
    /** Whether a batch is being made durable, by the writer or by the loop itself (below). */
    let writing = false
    /** Makes `batch` durable in one `persist`, then observes its events and sends its messages, in order. */
    const write = Effect.fnUntraced(function* (batch: ReadonlyArray<Stepped>) {
      const save = options.persist!
      const records = batch.length === 1 ? batch[0]!.persist : batch.flatMap((job) => job.persist)
      const waiting = tracing === undefined ? none : batch.flatMap((job) => job.spans)
      if (records.length > 0) {
        // what this process has ready to send leaves before the write, which may block the
        // event loop for the fsync (a leader's P2a to the other acceptors, sent just before
        // its own acceptor's write)
        transport.flush?.()
        yield* Effect.orDie(persistTraced(save(records), waiting, records.length))
      }
      const events = batch.length === 1 ? batch[0]!.events : batch.flatMap((job) => job.events)
      if (events.length > 0 && options.observe !== undefined) yield* options.observe(events)
      let sent = false
      for (const job of batch) {
        for (const { to, message } of job.send) {
          yield* transport.send(to, envelope(to, message))
          sent = true
        }
      }
      // and what the write released (the P2b) leaves now, not after the fibers woken meanwhile
      if (sent && records.length > 0) transport.flush?.()
      if (waiting.length > 0) endAll(waiting)
    })
    /** `write`, with `writing` set while it runs. */
    const writeMarked = (batch: ReadonlyArray<Stepped>) => {
      writing = true
      return Effect.ensuring(
        write(batch),
        Effect.sync(() => {
          writing = false
        })
      )
    }
    if (options.persistPipelined) {
      if (options.persist === undefined) return yield* Effect.die(new Error(`${self}: nothing to persist with`))
      if (options.child !== undefined)
        return yield* Effect.die(new Error(`${self}: pipelining is for roles without children`))
      yield* Effect.forkScoped(
        Effect.forever(
          Effect.gen(function* () {
            yield* writeMarked(yield* Queue.takeAll(jobs))
          })
        )
      )
    }

    const flush = Effect.fnUntraced(function* () {
      const ready = core.out.drain()
      if (ready.work.length > 0) {
        if (options.work === undefined) return yield* Effect.die(new Error(`${self}: no worker for the jobs asked for`))
        jobsWaiting.push(...ready.work)
        if (jobsWaiting.length > workBacklog) jobsWaiting.splice(0, jobsWaiting.length - workBacklog)
        yield* Queue.offer(wakeWorker, undefined)
      }
      if (options.persistPipelined) {
        const handled = takeOpen()
        if (ready.persist.length > 0 || ready.events.length > 0 || ready.send.length > 0 || handled.length > 0) {
          const job = { persist: ready.persist, events: ready.events, send: ready.send, spans: handled }
          if (!writing && Queue.sizeUnsafe(jobs) === 0) {
            // the writer is idle and nothing waits for it: write here, now, rather than
            // hand over to it on the scheduler's next batch, after every fiber woken with
            // this loop (with one client: the replica beside it, performing the slot
            // before, ahead of the fsync the write waits for)
            yield* writeMarked([job])
          } else yield* Queue.offer(jobs, job)
        }
        if (options.afterBatch !== undefined) yield* options.afterBatch
        return
      }
      const handled = takeOpen()
      const persist = Effect.suspend(() => {
        if (ready.persist.length === 0) return Effect.void
        if (options.persistInBackground) {
          unwritten = ready.persist.slice(-1)
          return Queue.offer(wakeWriter, undefined)
        }
        if (options.persist === undefined) return Effect.die(new Error(`${self}: nothing to persist with`))
        const persisted = options.persisted
        return Effect.orDie(persistTraced(options.persist(ready.persist), handled, ready.persist.length)).pipe(
          // its outputs leave with the next batch
          Effect.tap(() =>
            Effect.sync(() => {
              if (persisted !== undefined) core.step(persisted(ready.persist))
            })
          )
        )
      })
      if (!options.persistAfterSend && !options.persistInBackground) yield* persist
      if (ready.events.length > 0 && options.observe !== undefined) yield* options.observe(ready.events)
      for (const key of ready.stop) {
        const child = children.get(key)
        if (child === undefined) continue
        children.delete(key)
        if (child.fiber !== undefined) yield* Fiber.interrupt(child.fiber)
      }
      for (const { key, spec } of ready.start) {
        if (options.child === undefined) return yield* Effect.die(new Error(`${self}: no children to start`))
        if (children.has(key)) continue
        const inbox = yield* Queue.unbounded<Message.Envelope>()
        const entry: { inbox: Queue.Queue<Message.Envelope>; fiber?: Fiber.Fiber<unknown, unknown> } = { inbox }
        children.set(key, entry)
        entry.fiber = yield* options.child(spec, inbox).pipe(
          Effect.flatMap((outcome) => Effect.sync(() => local(outcome))),
          Effect.ensuring(
            Effect.sync(() => {
              if (children.get(key) === entry) children.delete(key)
            })
          ),
          Effect.forkScoped
        )
      }
      for (const { key, envelope } of ready.route) {
        const child = children.get(key)
        if (child !== undefined) Queue.offerUnsafe(child.inbox, envelope)
      }
      for (const { to, message } of ready.send) yield* transport.send(to, envelope(to, message))
      if (options.persistAfterSend || options.persistInBackground) yield* persist
      if (handled.length > 0) endAll(handled)
      if (tracing?.flushed !== undefined) tracing.flushed()
      if (options.afterBatch !== undefined) yield* options.afterBatch
    })

    const pollControl = options.child === undefined ? options.control : undefined
    const tick = options.tick
    let nextTick = tick === undefined ? Number.POSITIVE_INFINITY : clock.currentTimeMillisUnsafe() + tick.everyMs
    const loop = Effect.gen(function* () {
      for (;;) {
        const wake = Math.min(nextTick, core.wakeAt?.() ?? nextTick)
        // Under load inputs are already waiting: take them as they are. An empty queue
        // is waited on, with the loop's timer set for the next tick or wake-up; nothing
        // is waited on when that time has come.
        let batch = yield* takeNow
        if (batch.length === 0 && locals.length === 0) {
          if (wake > clock.currentTimeMillisUnsafe()) {
            if (Number.isFinite(wake)) yield* setTimer(wake)
            batch = yield* take
          } else {
            // the time has come: step it now, after letting the rest of the process run
            yield* Effect.yieldNow
          }
        }
        // writes the background writer finished since the last turn
        while (completions.length > 0) core.step(completions.shift()!)
        if (pollControl !== undefined) for (const input of yield* Queue.clear(pollControl)) core.step(input)
        // children's outcomes and control inputs, in the order they came
        for (let i = 0; i < locals.length; i++) {
          if (HopLog.enabled()) HopLog.mark(`step ${self} ${hopTag(locals[i])}`)
          core.step(locals[i]!)
        }
        locals.length = 0
        for (const input of batch) {
          if (HopLog.enabled()) HopLog.mark(`step ${self} ${hopTag(input)}`)
          core.step(input)
        }
        const now = clock.currentTimeMillisUnsafe()
        if (tick !== undefined && now >= nextTick) {
          nextTick = now + tick.everyMs
          core.step(tick.input)
        } else if (options.wake !== undefined) {
          const wakeAt = core.wakeAt?.()
          if (wakeAt !== undefined && now >= wakeAt) core.step(options.wake)
        }
        yield* flush()
      }
    })
    yield* Effect.forkScoped(loop)
  })
