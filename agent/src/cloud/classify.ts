// The one retry classifier: what an answer from the cloud (or the object store behind a
// presigned URL) means for the item being uploaded. Table-tested in classify.test.ts.

export type FailureKind = 'retry' | 'rate_limited' | 'auth' | 'permanent';

/** 'api' = the cloud's /v1 routes (bearer token); 'object' = a presigned object URL. */
export type Step = 'api' | 'object';

export function classifyStatus(status: number, step: Step): FailureKind {
  if (status === 429) return 'rate_limited';
  if (status === 401 || status === 403) {
    // A presigned URL that is refused has expired or was signed for other bytes: presign
    // again. Only the cloud's own 401/403 says the device token is bad.
    return step === 'object' ? 'retry' : 'auth';
  }
  if (status === 408 || status === 409 || status === 425 || status >= 500) return 'retry';
  // 404 on a presigned URL or an upload id: the cloud lost the pending upload; start over.
  if (status === 404) return 'retry';
  if (status >= 400) return 'permanent';
  return 'retry';
}
