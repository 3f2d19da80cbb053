import { Agent, request } from 'undici';

// A small client for OpenAI-compatible chat completions (OpenAI, Ollama, vLLM, llama.cpp
// server): POST <baseUrl>/chat/completions. Used by fleet triage now and by the vision model
// later, hence image parts in messages. Every failure is a ChatError with a stable code and
// a retryable flag (chat-client.test.ts pins them); the caller decides whether to retry.

const CONNECT_TIMEOUT_MS = 10_000;
/** Error bodies are read only this far, for the message. */
const MAX_ERROR_BODY = 4 * 1024;
/** A response larger than this is not a chat answer we want. */
const MAX_RESPONSE_BYTES = 1024 * 1024;

export const CHAT_ERRORS = {
  /** No connection (refused, reset, DNS). */
  LLM_UNREACHABLE: { retryable: true },
  /** No complete answer within the timeout. */
  LLM_TIMEOUT: { retryable: true },
  /** 429. */
  LLM_RATE_LIMITED: { retryable: true },
  /** 5xx (and 408). */
  LLM_SERVER_ERROR: { retryable: true },
  /** 401/403: the API key is missing or wrong. */
  LLM_AUTH: { retryable: false },
  /** Any other 4xx: the request itself is wrong (unknown model, too long). */
  LLM_REJECTED: { retryable: false },
  /** 2xx, but not a chat completion with content. */
  LLM_BAD_RESPONSE: { retryable: false },
  /** The caller's signal aborted the call. */
  LLM_ABORTED: { retryable: false },
} as const;
export type ChatErrorCode = keyof typeof CHAT_ERRORS;

export class ChatError extends Error {
  readonly code: ChatErrorCode;
  readonly retryable: boolean;
  readonly status: number | undefined;
  readonly retryAfterMs: number | undefined;

  constructor(code: ChatErrorCode, message: string, o: { status?: number; retryAfterMs?: number; cause?: unknown } = {}) {
    super(message, o.cause === undefined ? undefined : { cause: o.cause });
    this.name = 'ChatError';
    this.code = code;
    this.retryable = CHAT_ERRORS[code].retryable;
    this.status = o.status;
    this.retryAfterMs = o.retryAfterMs;
  }
}

/** The error code for a non-2xx status. */
export function classifyChatStatus(status: number): ChatErrorCode {
  if (status === 429) return 'LLM_RATE_LIMITED';
  if (status === 401 || status === 403) return 'LLM_AUTH';
  if (status === 408 || status >= 500) return 'LLM_SERVER_ERROR';
  return 'LLM_REJECTED';
}

export type ChatContentPart = { type: 'text'; text: string } | { type: 'image_url'; image_url: { url: string; detail?: 'low' | 'high' | 'auto' } };

export interface ChatMessage {
  role: 'system' | 'user' | 'assistant';
  content: string | ChatContentPart[];
}

export interface ChatRequest {
  messages: ChatMessage[];
  maxTokens?: number;
  temperature?: number;
  /** Ask for a JSON object answer (response_format), where the server supports it. */
  json?: boolean;
  signal?: AbortSignal;
}

export interface ChatResult {
  content: string;
  /** The model that answered, as the server names it. */
  model: string;
  finishReason: string | null;
  usage: { promptTokens: number; completionTokens: number } | null;
}

export interface ChatClientOptions {
  /** Up to and including the API version: https://api.openai.com/v1, http://127.0.0.1:11434/v1. */
  baseUrl: string;
  model: string;
  /** Sent as a bearer token when set. Never logged. */
  apiKey?: string | undefined;
  timeoutMs: number;
}

export class ChatClient {
  readonly #agent = new Agent({ connect: { timeout: CONNECT_TIMEOUT_MS }, keepAliveTimeout: 30_000 });
  readonly #url: string;
  readonly #o: ChatClientOptions;

  constructor(o: ChatClientOptions) {
    this.#o = o;
    this.#url = `${o.baseUrl.replace(/\/+$/, '')}/chat/completions`;
  }

  get model(): string {
    return this.#o.model;
  }

  async complete(req: ChatRequest): Promise<ChatResult> {
    const timeout = AbortSignal.timeout(this.#o.timeoutMs);
    const signals = req.signal ? [req.signal, timeout] : [timeout];
    const body = JSON.stringify({
      model: this.#o.model,
      messages: req.messages,
      ...(req.maxTokens === undefined ? {} : { max_tokens: req.maxTokens }),
      ...(req.temperature === undefined ? {} : { temperature: req.temperature }),
      ...(req.json ? { response_format: { type: 'json_object' } } : {}),
    });
    const headers: Record<string, string> = { 'content-type': 'application/json', accept: 'application/json' };
    if (this.#o.apiKey) headers.authorization = `Bearer ${this.#o.apiKey}`;

    let status: number;
    let text: string;
    let retryAfter: string | string[] | undefined;
    try {
      const res = await request(this.#url, {
        method: 'POST',
        dispatcher: this.#agent,
        signal: AbortSignal.any(signals),
        headersTimeout: this.#o.timeoutMs,
        bodyTimeout: this.#o.timeoutMs,
        headers,
        body,
      });
      status = res.statusCode;
      retryAfter = res.headers['retry-after'];
      text = await readLimited(res.body, status >= 200 && status < 300 ? MAX_RESPONSE_BYTES : MAX_ERROR_BODY);
    } catch (err) {
      if (err instanceof ChatError) throw err;
      if (req.signal?.aborted) throw new ChatError('LLM_ABORTED', 'the call was aborted', { cause: err });
      const e = err as { code?: string; name?: string; message?: string };
      if (timeout.aborted || /TIMEOUT/.test(e.code ?? '')) {
        throw new ChatError('LLM_TIMEOUT', `no answer from the model within ${this.#o.timeoutMs} ms`, { cause: err });
      }
      throw new ChatError('LLM_UNREACHABLE', `${e.code ?? e.name ?? 'error'}: ${e.message ?? String(err)}`, { cause: err });
    }

    if (status < 200 || status >= 300) {
      const code = classifyChatStatus(status);
      const retryAfterMs = parseRetryAfterSeconds(retryAfter);
      throw new ChatError(code, `HTTP ${status}: ${errorMessage(text)}`, { status, ...(retryAfterMs === undefined ? {} : { retryAfterMs }) });
    }
    return parseCompletion(text);
  }

  async close(): Promise<void> {
    await this.#agent.close();
  }
}

async function readLimited(body: AsyncIterable<Buffer>, limit: number): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    size += chunk.length;
    if (size > limit) {
      if (limit === MAX_ERROR_BODY) break;
      throw new ChatError('LLM_BAD_RESPONSE', `the response is larger than ${limit} bytes`);
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

function parseCompletion(text: string): ChatResult {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new ChatError('LLM_BAD_RESPONSE', 'the response is not JSON');
  }
  const j = json as {
    model?: unknown;
    choices?: { message?: { content?: unknown }; finish_reason?: unknown }[];
    usage?: { prompt_tokens?: unknown; completion_tokens?: unknown };
  };
  const choice = Array.isArray(j.choices) ? j.choices[0] : undefined;
  const content = choice?.message?.content;
  if (typeof content !== 'string') throw new ChatError('LLM_BAD_RESPONSE', 'the response has no choices[0].message.content');
  const u = j.usage;
  return {
    content,
    model: typeof j.model === 'string' ? j.model : '',
    finishReason: typeof choice?.finish_reason === 'string' ? choice.finish_reason : null,
    usage:
      u && typeof u.prompt_tokens === 'number' && typeof u.completion_tokens === 'number'
        ? { promptTokens: u.prompt_tokens, completionTokens: u.completion_tokens }
        : null,
  };
}

/** OpenAI-style `{error: {message}}`, else the start of the body. */
function errorMessage(text: string): string {
  try {
    const m = (JSON.parse(text) as { error?: { message?: unknown } | string }).error;
    if (typeof m === 'string') return m.slice(0, 500);
    if (m && typeof m.message === 'string') return m.message.slice(0, 500);
  } catch {
    // not JSON: fall through
  }
  return text.slice(0, 200) || '(empty body)';
}

function parseRetryAfterSeconds(v: string | string[] | undefined): number | undefined {
  const s = (Array.isArray(v) ? v[0] : v)?.trim();
  return s && /^\d+$/.test(s) ? Number(s) * 1000 : undefined;
}
