/**
 * The tracing helpers every layer uses: child spans of whatever span is active, run or iterated
 * with that span active, so the next layer down (and the upstream HTTP call) sees it.
 *
 * Cost when nothing records. A child span is only started under a recording parent. Without an
 * exporter the server span is a non-recording one (ids only, for logs and traceparent), so every
 * helper here short-circuits: no span object, no context switch, the function is simply called.
 */
import {
  INVALID_SPAN_CONTEXT,
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  createContextKey,
  trace,
  type Attributes,
  type Context,
  type ContextManager,
  type Span,
  type TextMapPropagator,
  type Tracer,
} from "@opentelemetry/api";
import { LlmError } from "../errors/llm-error.js";
import { TAXONOMY } from "../errors/taxonomy.js";

/** A span that records nothing; returned wherever no span is worth starting. */
export const NOOP_SPAN: Span = trace.wrapSpanContext(INVALID_SPAN_CONTEXT);

const REQUEST_ID = createContextKey("llm-service request id");
const CLIENT_REQUEST_ID = createContextKey("llm-service client request id");

/** The `error.type` of a failure: the taxonomy reason for domain errors, the class name otherwise. */
export function errorType(err: unknown): string {
  if (err instanceof LlmError) return err.reason;
  if (err instanceof Error) return err.name || "Error";
  return "_OTHER";
}

/** A status message safe to export: domain messages are written for clients, others are withheld. */
function statusMessage(err: unknown): string {
  if (err instanceof LlmError) return TAXONOMY[err.reason].sanitise ? err.reason : err.message;
  return errorType(err);
}

/** A minimal context manager for when none is wired: everything runs in the root context. */
class RootContextManager implements ContextManager {
  active(): Context {
    return ROOT_CONTEXT;
  }
  with<A extends unknown[], F extends (...args: A) => ReturnType<F>>(_context: Context, fn: F, thisArg?: ThisParameterType<F>, ...args: A): ReturnType<F> {
    return fn.call(thisArg, ...args);
  }
  bind<T>(_context: Context, target: T): T {
    return target;
  }
  enable(): this {
    return this;
  }
  disable(): this {
    return this;
  }
}

export interface TracingOptions {
  tracer?: Tracer;
  contexts?: ContextManager;
  propagator?: TextMapPropagator;
  /** Prompt and completion text may go on spans (OTEL_CAPTURE_CONTENT). */
  captureContent?: boolean;
  /** Spans are exported somewhere (an exporter is configured). */
  exporting?: boolean;
}

const headerGetter = {
  get: (carrier: Headers, key: string) => carrier.get(key) ?? undefined,
  keys: (carrier: Headers) => [...carrier.keys()],
};

const recordSetter = {
  set: (carrier: Record<string, string>, key: string, value: string) => {
    carrier[key] = value;
  },
};

export class Tracing {
  readonly captureContent: boolean;
  /** True when spans leave the process; false means only ids are made (for logs and propagation). */
  readonly exporting: boolean;
  private readonly tracer: Tracer | undefined;
  private readonly contexts: ContextManager;
  private readonly propagator: TextMapPropagator | undefined;

  constructor(options: TracingOptions = {}) {
    this.tracer = options.tracer;
    this.contexts = options.contexts ?? new RootContextManager();
    this.propagator = options.propagator;
    this.captureContent = options.captureContent ?? false;
    this.exporting = options.exporting ?? false;
  }

  /** Tracing that does nothing at all (the default in unit tests of core and router). */
  static readonly disabled = new Tracing();

  active(): Context {
    return this.contexts.active();
  }

  /** The span active now (the no-op span when there is none). */
  activeSpan(): Span {
    return trace.getSpan(this.contexts.active()) ?? NOOP_SPAN;
  }

  /** Whether the active span records (worth building attributes for). */
  recording(): boolean {
    return this.tracer !== undefined && (trace.getSpan(this.contexts.active())?.isRecording() ?? false);
  }

  /** Runs fn with ctx active. */
  with<T>(ctx: Context, fn: () => T): T {
    return this.contexts.with(ctx, fn);
  }

  /** The caller's trace context from request headers (traceparent, tracestate). */
  extract(headers: Headers): Context {
    if (!this.propagator) return ROOT_CONTEXT;
    return this.propagator.extract(ROOT_CONTEXT, headers, headerGetter);
  }

  /** Writes the active trace context (traceparent, tracestate) into outgoing headers. */
  inject(headers: Record<string, string>): void {
    if (!this.propagator) return;
    const ctx = this.contexts.active();
    if (trace.getSpan(ctx) === undefined) return;
    this.propagator.inject(ctx, headers, recordSetter);
  }

  /** The server span of a call, continuing `parent` (the caller's context); always made, recording or not. */
  startServerSpan(name: string, attributes: Attributes, parent: Context): Span {
    if (!this.tracer) return NOOP_SPAN;
    return this.tracer.startSpan(name, { kind: SpanKind.SERVER, attributes }, parent);
  }

  /** A span with no parent, for background work (ledger writes); only when spans are exported. */
  startRootSpan(name: string, attributes: Attributes, kind: SpanKind = SpanKind.INTERNAL): Span {
    if (!this.tracer || !this.exporting) return NOOP_SPAN;
    return this.tracer.startSpan(name, { kind, attributes, root: true }, ROOT_CONTEXT);
  }

  /**
   * A child of the active span; the no-op span when the active one does not record. Attributes
   * may be given as a function, called only when a span is really started.
   */
  startSpan(name: string, attributes?: Attributes | (() => Attributes), kind: SpanKind = SpanKind.INTERNAL): Span {
    if (!this.tracer) return NOOP_SPAN;
    const parent = this.contexts.active();
    if (!trace.getSpan(parent)?.isRecording()) return NOOP_SPAN;
    const attrs = typeof attributes === "function" ? attributes() : attributes;
    return this.tracer.startSpan(name, { kind, ...(attrs ? { attributes: attrs } : {}) }, parent);
  }

  /** A context carrying the request id (and the caller's x-request-id, when given), for log lines written while it is active. */
  withRequestId(ctx: Context, requestId: string, clientRequestId = ""): Context {
    const withId = ctx.setValue(REQUEST_ID, requestId);
    return clientRequestId === "" ? withId : withId.setValue(CLIENT_REQUEST_ID, clientRequestId);
  }

  /** Request id, the caller's request id, trace id and span id of the active context, for a log line. */
  logFields(): { requestId?: string; clientRequestId?: string; traceId?: string; spanId?: string } {
    const ctx = this.contexts.active();
    const fields: { requestId?: string; clientRequestId?: string; traceId?: string; spanId?: string } = {};
    const requestId = ctx.getValue(REQUEST_ID);
    if (typeof requestId === "string") fields.requestId = requestId;
    const clientRequestId = ctx.getValue(CLIENT_REQUEST_ID);
    if (typeof clientRequestId === "string") fields.clientRequestId = clientRequestId;
    const sc = trace.getSpan(ctx)?.spanContext();
    if (sc !== undefined && sc.traceId !== INVALID_SPAN_CONTEXT.traceId) {
      fields.traceId = sc.traceId;
      fields.spanId = sc.spanId;
    }
    return fields;
  }

  /** Runs fn with span active; a span that does not record leaves the context as it is. */
  bind<T>(span: Span, fn: () => T): T {
    if (span === NOOP_SPAN || !span.isRecording()) return fn();
    return this.contexts.with(trace.setSpan(this.contexts.active(), span), fn);
  }

  /** Runs fn inside a new child span, ending it when fn settles (error status when it throws). */
  async inSpan<T>(name: string, attributes: Attributes | (() => Attributes), fn: (span: Span) => Promise<T> | T, kind?: SpanKind): Promise<T> {
    const span = this.startSpan(name, attributes, kind);
    if (span === NOOP_SPAN) return fn(span);
    try {
      return await this.bind(span, () => fn(span));
    } catch (err) {
      this.fail(span, err);
      throw err;
    } finally {
      span.end();
    }
  }

  /** Marks a span failed: error.type and an error status with a client-safe message. */
  fail(span: Span, err: unknown): void {
    if (!span.isRecording()) return;
    span.setAttribute("error.type", errorType(err));
    span.setStatus({ code: SpanStatusCode.ERROR, message: statusMessage(err) });
  }

  /** Ends a span once (after an error when given); harmless on an ended or no-op span. */
  end(span: Span, err?: unknown): void {
    if (!span.isRecording()) return;
    if (err !== undefined) this.fail(span, err);
    span.end();
  }

  /** Sets attributes on the active span, when it records. */
  annotate(attributes: Attributes): void {
    const span = this.activeSpan();
    if (span.isRecording()) span.setAttributes(attributes);
  }

  /** Adds an event to the active span, when it records. */
  event(name: string, attributes?: Attributes): void {
    const span = this.activeSpan();
    if (span.isRecording()) span.addEvent(name, attributes);
  }

  /**
   * The same sequence, with every step (next, return) run while `span` is active, so what the
   * source does per step (an upstream fetch) is its child. The span is not ended here.
   */
  within<T>(span: Span, source: AsyncIterable<T>): AsyncIterable<T> {
    if (span === NOOP_SPAN || !span.isRecording()) return source;
    const ctx = trace.setSpan(this.contexts.active(), span);
    return this.steps(ctx, source);
  }

  /** Iterates `source` with ctx active on every step. */
  async *steps<T>(ctx: Context, source: AsyncIterable<T>): AsyncGenerator<T, void, undefined> {
    const it = source[Symbol.asyncIterator]();
    let finished = false;
    try {
      for (;;) {
        const step = await this.contexts.with(ctx, () => it.next());
        if (step.done) {
          finished = true;
          return;
        }
        yield step.value;
      }
    } catch (err) {
      finished = true;
      throw err;
    } finally {
      // The consumer stopped early: let the source clean up (in the same context).
      if (!finished) await this.contexts.with(ctx, () => it.return?.());
    }
  }
}
