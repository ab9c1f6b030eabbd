// Types of upbroker.js, the browser client of upbroker (served at
// /v1/client.js; this file at /v1/client.d.ts).

/** Error codes of upbroker's API, plus the client's own. */
export type UpbrokerErrorCode =
  | 'invalid_request' | 'unauthorized' | 'forbidden' | 'not_found'
  | 'method_not_allowed' | 'not_uploaded' | 'exists' | 'expired'
  | 'too_large' | 'unsupported_type' | 'rejected' | 'rate_limited'
  | 'internal' | 'backend_unavailable'
  /** the network failed, or a store did not answer */
  | 'network'
  /** a part uploaded but the store's CORS settings hide its ETag header */
  | 'etag_unreadable'
  | 'error'
  | (string & {});

/** An error of the broker's API (its JSON error body) or of the store. */
export declare class UpbrokerError extends Error {
  constructor(message: string, opts?: {
    code?: UpbrokerErrorCode; status?: number; field?: string;
    retryAfter?: number; cause?: unknown;
  });
  readonly name: 'UpbrokerError';
  /** e.g. "too_large", "unsupported_type" */
  code: UpbrokerErrorCode;
  /** HTTP status; 0 when no answer came (network error) */
  status: number;
  /** the request field at fault, when one is */
  field?: string;
  /** seconds to wait, from Retry-After (429) */
  retryAfter?: number;
}

export interface UpbrokerOptions {
  /** Where the broker is, e.g. "https://uploads.example.com". Default: this page's origin. */
  baseURL?: string;
  /** Sent to the broker as `Authorization: Bearer <token>` (never to the store). */
  token?: string;
  /** Called before each request to the broker; wins over `token`. */
  getToken?: () => string | undefined | Promise<string | undefined>;
  /** Extra headers for requests to the broker. */
  headers?: Record<string, string>;
}

export interface UploadProgress {
  /** bytes sent so far, across all parts */
  loaded: number;
  /** the file's size */
  total: number;
}

export interface UploadOptions {
  /** the profile to upload under; default: the broker's default_profile */
  profile?: string;
  /** user metadata for the object (keys must not begin with "upbroker") */
  metadata?: Record<string, string>;
  onProgress?: (progress: UploadProgress) => void;
  /** aborts every request and drops the upload (DELETE /v1/uploads/{id}) */
  signal?: AbortSignal;
  /** parts in flight at once for a multipart upload; default 4 */
  concurrency?: number;
}

/** The completed object: the broker's answer to POST .../complete. */
export interface UploadResult {
  key: string;
  size: number;
  content_type: string;
  /** a public or short-lived download URL */
  url: string;
  etag?: string;
}

/** One request the client sends to the store. */
export interface GrantRequest {
  method: 'PUT' | 'POST' | string;
  url: string;
  headers: Record<string, string> | null;
  /** POST form fields, sent before the file */
  fields: Record<string, string> | null;
}

/** The broker's answer to POST /v1/uploads. */
export interface Grant {
  id: string;
  key: string;
  backend: string;
  profile: string;
  expires_at: string;
  upload: GrantRequest | null;
  multipart: { part_size: number; part_count: number; parts_url: string } | null;
  enforced: { size: string; content_type: string; checksum: string; overwrite: string };
  complete_url: string;
}

export declare class Upbroker {
  constructor(opts?: UpbrokerOptions);
  readonly baseURL: string;
  token?: string;
  getToken?: UpbrokerOptions['getToken'];
  headers: Record<string, string>;
  /** Grants, sends and completes one upload. Rejects with UpbrokerError, or an AbortError when aborted. */
  upload(file: File | Blob, opts?: UploadOptions): Promise<UploadResult>;
  /** Only asks for a grant (POST /v1/uploads). */
  createUpload(file: File | Blob, opts?: Pick<UploadOptions, 'profile' | 'metadata' | 'signal'>): Promise<Grant>;
  /** Drops an upload by its grant id (DELETE /v1/uploads/{id}). */
  abort(id: string): Promise<void>;
}

/** True for the error an aborted upload rejects with. */
export declare function isAbortError(err: unknown): boolean;

/** Builds an UpbrokerError from an error response's body. */
export declare function errorFromBody(
  status: number, text: string, contentType?: string | null, retryAfter?: string | null,
): UpbrokerError;

/** One request to a store with XMLHttpRequest (for its upload progress). */
export declare function send(req: {
  method: string; url: string; headers?: Record<string, string> | null;
  body: XMLHttpRequestBodyInit; signal?: AbortSignal;
  onProgress?: (loaded: number, total: number) => void;
}): Promise<XMLHttpRequest>;

export default Upbroker;
