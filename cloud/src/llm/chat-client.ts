import { Agent, request } from 'undici';
import { parseRetryAfter } from '../lib/backoff.js';

// A small client for OpenAI-compatible chat completions (OpenAI, Ollama, vLLM, llama.cpp
// server): POST <baseUrl>/chat/completions. Used by fleet triage and by the vision analyser,
// hence image parts in messages and JSON-schema answers. Every failure is a ChatError with a
// stable code and a retryable flag (chat-client.test.ts pins them); the caller decides whether
// to retry. Two timeouts: a short one for the connection (a dead host is known in seconds) and
// a long one for the answer (a vision model on a small GPU may think for a minute).

/** No TCP (and TLS) connection within this: LLM_UNREACHABLE. */
export const CHAT_CONNECT_TIMEOUT_MS = 10_000;
/** No complete answer (headers and body) within this after the call began: LLM_TIMEOUT. */
export const CHAT_READ_TIMEOUT_MS = 120_000;
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
  /** Ask for a JSON object answer (response_format json_object), where the server supports it. */
  json?: boolean;
  /**
   * Ask for an answer that follows this JSON schema (response_format json_schema; OpenAI,
   * vLLM, llama.cpp server and Ollama honour it). Wins over `json`.
   */
  jsonSchema?: { name: string; schema: Record<string, unknown>; strict?: boolean };
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
  /** The read timeout: the whole answer, headers and body, within this (CHAT_READ_TIMEOUT_MS). */
  timeoutMs?: number | undefined;
  /** The connection within this (CHAT_CONNECT_TIMEOUT_MS). */
  connectTimeoutMs?: number | undefined;
}

export class ChatClient {
  readonly #agent: Agent;
  readonly #url: string;
  readonly #o: ChatClientOptions;
  readonly #timeoutMs: number;
  readonly #connectTimeoutMs: number;

  constructor(o: ChatClientOptions) {
    this.#o = o;
    this.#url = `${o.baseUrl.replace(/\/+$/, '')}/chat/completions`;
    this.#timeoutMs = o.timeoutMs ?? CHAT_READ_TIMEOUT_MS;
    this.#connectTimeoutMs = o.connectTimeoutMs ?? CHAT_CONNECT_TIMEOUT_MS;
    this.#agent = new Agent({ connect: { timeout: this.#connectTimeoutMs }, keepAliveTimeout: 30_000 });
  }

  get model(): string {
    return this.#o.model;
  }

  async complete(req: ChatRequest): Promise<ChatResult> {
    const timeoutMs = this.#timeoutMs;
    const timeout = AbortSignal.timeout(timeoutMs);
    const signals = req.signal ? [req.signal, timeout] : [timeout];
    const body = JSON.stringify({
      model: this.#o.model,
      messages: req.messages,
      ...(req.maxTokens === undefined ? {} : { max_tokens: req.maxTokens }),
      ...(req.temperature === undefined ? {} : { temperature: req.temperature }),
      ...responseFormat(req),
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
        headersTimeout: timeoutMs,
        bodyTimeout: timeoutMs,
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
      if (e.code === 'UND_ERR_CONNECT_TIMEOUT') {
        throw new ChatError('LLM_UNREACHABLE', `no connection to the model server within ${this.#connectTimeoutMs} ms`, { cause: err });
      }
      if (timeout.aborted || /TIMEOUT/.test(e.code ?? '')) {
        throw new ChatError('LLM_TIMEOUT', `no answer from the model within ${timeoutMs} ms`, { cause: err });
      }
      throw new ChatError('LLM_UNREACHABLE', `${e.code ?? e.name ?? 'error'}: ${e.message ?? String(err)}`, { cause: err });
    }

    if (status < 200 || status >= 300) {
      const code = classifyChatStatus(status);
      const retryAfterMs = parseRetryAfter(retryAfter, Date.now());
      throw new ChatError(code, `HTTP ${status}: ${errorMessage(text)}`, { status, ...(retryAfterMs === undefined ? {} : { retryAfterMs }) });
    }
    return parseCompletion(text);
  }

  async close(): Promise<void> {
    await this.#agent.close();
  }
}

function responseFormat(req: ChatRequest): { response_format?: unknown } {
  if (req.jsonSchema) {
    const { name, schema, strict = true } = req.jsonSchema;
    return { response_format: { type: 'json_schema', json_schema: { name, schema, strict } } };
  }
  return req.json ? { response_format: { type: 'json_object' } } : {};
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
    choices?: { message?: { content?: unknown; refusal?: unknown }; finish_reason?: unknown }[];
    usage?: { prompt_tokens?: unknown; completion_tokens?: unknown };
  };
  const choice = Array.isArray(j.choices) ? j.choices[0] : undefined;
  const content = choice?.message?.content;
  const refusal = choice?.message?.refusal;
  // OpenAI's structured outputs answer a refusal in its own field, with no content.
  if (typeof content !== 'string' && typeof refusal === 'string') throw new ChatError('LLM_BAD_RESPONSE', `the model refused: ${refusal.slice(0, 200)}`);
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

