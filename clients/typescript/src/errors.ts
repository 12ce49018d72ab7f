/** Every failure of the SDK: an error answer of the API, or a client-side failure. */
export class MediakeepError extends Error {
  /** The HTTP status, or null when no answer arrived (connection failure, timeout, abort). */
  readonly status: number | null;
  /** The API's code (`not_found`, `validation.invalid`, ...) or a client one (`client.timeout`). */
  readonly code: string;
  /** Field-level details of a validation error: `[{field, message}]`. */
  readonly details: unknown[];
  /** `req_...` of the request (from the body or the `X-Request-Id` header): quote it in bug reports. */
  readonly requestId: string | null;

  constructor(
    message: string,
    init: { status?: number | null; code: string; details?: unknown[]; requestId?: string | null; cause?: unknown },
  ) {
    super(message, init.cause === undefined ? undefined : { cause: init.cause });
    this.name = "MediakeepError";
    this.status = init.status ?? null;
    this.code = init.code;
    this.details = init.details ?? [];
    this.requestId = init.requestId ?? null;
  }

  /** The error of an API answer: `{"error": {code, message, details, request_id}}`, else a generic one. */
  static async fromResponse(response: Response): Promise<MediakeepError> {
    const headerId = response.headers.get("x-request-id");
    let text = "";
    try {
      text = await response.text();
    } catch {
      // the body broke off: keep the status
    }
    let error: { code?: unknown; message?: unknown; details?: unknown; request_id?: unknown } | undefined;
    try {
      const parsed: unknown = JSON.parse(text);
      if (parsed && typeof parsed === "object" && "error" in parsed) {
        error = (parsed as { error: typeof error }).error;
      }
    } catch {
      // not JSON (a proxy's page): the status speaks
    }
    return new MediakeepError(
      typeof error?.message === "string" ? error.message : `HTTP ${response.status}${text ? `: ${text.slice(0, 200)}` : ""}`,
      {
        status: response.status,
        code: typeof error?.code === "string" ? error.code : `http.${response.status}`,
        details: Array.isArray(error?.details) ? error.details : [],
        requestId: typeof error?.request_id === "string" ? error.request_id : headerId,
      },
    );
  }
}
