// Shapes of the /supervisor namespace's payloads (omni/domain/monitoring.py).
import type { AnyWireEvent, PresencePayload, WireEventOf } from "../generated/contracts";
import type { OfferWhy } from "../operator/types";

export interface QueueStat {
  id: number;
  name: string;
  sla_seconds: number;
  waiting: number;
  longest_wait_seconds: number;
  longest_wait_since: string | null;
  longest_wait_level: WaitLevel;
  thresholds: { amber: number; red: number };
  in_service: number;
  offered_today: number;
  answered_today: number;
  answered_in_sla_today: number;
  service_level_pct: number | null;
  abandoned_today: number;
  abandoned_short_today: number;
  missed_today: number;
  asa_seconds: number | null;
  aht_seconds: number | null;
  closed_today: number;
}

export interface CurrentConversation {
  id: number;
  channel: string;
  medium: string;
  status: string;
  queue_id: number | null;
  /** Its labels (chips; the page's label filter). */
  label_ids?: number[];
  accepted_at: string | null;
  /** Voice: the call is still up (listen / whisper / barge / force end apply). */
  call_live?: boolean;
  /** Voice: the call's recording, when one was made. */
  recording_url?: string | null;
  /** The rule it was offered to this operator by (``omni.domain.place.offer_why``). */
  why?: OfferWhy | null;
}

export type SpyMode = "listen" | "whisper" | "barge";

/** Boot data ``spy`` (``omni.domain.grants.spy_rights``): each mode's grant scope (``null``:
 * not held) and, for ``group`` scopes, the operators whose calls may be joined. */
export interface SpyRights {
  modes: Partial<Record<SpyMode, "all" | "group" | "own" | null>>;
  group_user_ids: number[];
}

export interface OperatorRow {
  id: number;
  name: string;
  username: string;
  status: string;
  status_name: string;
  status_name_ru: string;
  colour: string;
  reason: string;
  since: string;
  time_in_status_seconds: number;
  max_duration_seconds: number | null;
  over_limit: boolean;
  activity: string;
  activity_name: string;
  activity_name_ru: string;
  activity_colour: string;
  activity_since: string;
  connected: boolean;
  conversations: CurrentConversation[];
  conversation_count: number;
  handled_today: number;
}

export interface Snapshot {
  now: string;
  day_start: string;
  timezone: string;
  short_abandon_seconds: number;
  queues: QueueStat[];
  operators: OperatorRow[];
  last_seq: number;
}

export interface StatusOption {
  code: string;
  name: string;
  colour: string;
  settable: boolean;
  max_duration_seconds: number | null;
}

/** One pushed event (generated from the Python definitions); narrow on ``type``. */
export type WireEvent = AnyWireEvent;

export type PresenceEvent = WireEventOf<"presence.changed"> | WireEventOf<"presence.over_limit">;
export type { PresencePayload };

export type WaitLevel = "green" | "amber" | "red";
