// Names for the generated OpenAPI types (schema.ts), as the API's JSON has them (snake_case).
import type { components, operations } from "./schema.js";

type Schemas = components["schemas"];
type QueryOf<K extends keyof operations> = operations[K] extends { parameters: { query?: infer Q } } ? NonNullable<Q> : never;

export type Media = Schemas["MediaOut"];
export type MediaPatch = Schemas["UpdateMediaIn"];
export type MediaListParams = Omit<QueryOf<"media_list_media">, "cursor">;
export type Variant = Schemas["VariantOut"];
export type BatchResult = Schemas["BatchOut"];
export type ResolveResult = Schemas["ResolveOut"];
export type PresignedUrl = Schemas["PresignOut"];
export type TransformUrlOptions = Schemas["TransformUrlIn"];
export type UploadTicket = Schemas["UploadUrlOut"] & { deduped?: boolean };
export type Job = Schemas["JobOut"];
export type JobListParams = Omit<QueryOf<"jobs_list_jobs">, "cursor">;
export type StreamOptions = Schemas["StreamIn"];
export type StreamJob = Schemas["StreamJobOut"];
export type StreamLinks = Schemas["StreamOut"];
export type Caption = Schemas["CaptionOut"];
export type CaptionInput = Schemas["CaptionIn"];
export type CaptionPatch = Schemas["CaptionPatch"];
export type Collection = Schemas["CollectionOut"];
export type CollectionInput = Schemas["CollectionIn"];
export type CollectionPatch = Schemas["CollectionPatch"];
export type Webhook = Schemas["WebhookOut"];
export type WebhookCreated = Schemas["WebhookCreated"];
export type WebhookInput = Schemas["WebhookIn"];
export type WebhookPatch = Schemas["WebhookPatch"];
export type WebhookDelivery = Schemas["DeliveryOut"];
export type ApiKey = Schemas["ApiKeyOut"];
export type ApiKeyCreated = Schemas["ApiKeyCreated"];
export type ApiKeyInput = Schemas["ApiKeyCreate"];
export type TokenPair = Schemas["TokenPair"];
export type User = Schemas["UserOut"];
export type ErrorBody = Schemas["Error"];

/** One page of a list: `{data, next_cursor}` (and `total` with `include_total`). */
export interface Page<T> {
  data: T[];
  next_cursor: string | null;
  total?: number | null;
}

/** An event of webhooks and realtime streams. */
export interface MediakeepEvent<D = Record<string, unknown>> {
  id: string;
  type: string;
  org_id: string;
  data: D;
  timestamp: string;
}
