// Shapes the /operator namespace sends (see omni/domain/workspace.py and serialize.py). What
// events carry is generated from the Python definitions (../generated/contracts.ts); the
// panels' extra fields are added here.
import type { AnyWireEvent, CallbackPayload, ConversationPayload, MessagePayload, PresencePayload } from "../generated/contracts";
import { channelSvg } from "../icons";
import type { CampaignCard } from "./campaign";

export type Presence = PresencePayload;

/** A conversation as events carry it, plus what the panels add (names, position, fit). */
export interface Conversation extends ConversationPayload {
  contact_name?: string;
  queue_name?: string;
  hold_started_at?: string | null;
  wrap_up_seconds?: number;
  position?: number;
  manual_pick?: boolean;
  /** Waiting items: one more conversation of this medium fits the operator's free capacity. */
  fits?: boolean;
}

export interface Offer {
  id: number;
  conversation_id: number;
  expires_at: string;
  conversation?: Conversation;
  /** Why it is offered to me (``omni.domain.place.offer_why``): ``rule`` and its detail. */
  why?: OfferWhy | null;
}

export interface OfferWhy {
  rule: string;
  priority?: number;
  since?: string | null;
  conversation_id?: number | null;
  from_user_id?: number | null;
  via?: string;
}

/** The customer asked to be called back and kept their place: accepted in the window, then
 * the phone system dials them (no caller is on the line to answer on the phone). */
export function isCallback(c?: { variables?: Record<string, unknown> } | null): boolean {
  const place = c?.variables?.place as { mode?: unknown } | undefined;
  return place?.mode === "callback";
}

export interface Message extends Omit<MessagePayload, "attachments" | "channel"> {
  /** Only in events (``message.created``); the open view's messages don't repeat it. */
  channel?: string;
  /** Files ``{name, url}``; bot traffic ``{kind: "buttons", buttons}``, ``{kind: "button_reply", id}``,
   * ``{kind: "dtmf", digits}``, ``{kind: "prompt", file}`` (omni/domain/automated.py). */
  attachments: { name?: string; url?: string; kind?: string; [key: string]: unknown }[];
  /** Phones or e-mails the customer wrote are masked for this reader (omni/domain/masking.py). */
  masked?: boolean;
}

export interface Callback extends CallbackPayload {
  contact_name: string;
  contact_phone: string | null;
  channel: string | null;
}

export interface CardField {
  key: string;
  label: string;
  label_ru: string;
  kind: string;
  options: string[];
  required: boolean;
  editable: boolean;
  value: unknown;
}

export interface Card {
  contact: {
    id: number;
    name: string;
    email: string | null;
    phone: string | null;
    region: string | null;
    timezone: string | null;
    local_time: string | null;
    utc_offset_seconds: number | null;
    blacklisted: boolean;
    tags: string[];
    /** Phone and e-mail are masked for this reader (omni/domain/masking.py). */
    masked?: boolean;
    /** The reader may reveal them (audited): POST /api/v1/contacts/{id}/reveal. */
    can_reveal?: boolean;
  };
  fields: CardField[];
}

export interface Named {
  id: number;
  name: string;
}

export interface ResultCode extends Named {
  code: string;
  name_ru?: string;
  colour: string;
  /** A campaign conversation's code: its campaign action (``callback`` asks for a time). */
  action?: string | null;
}

export interface View {
  conversation: Conversation;
  messages: Message[];
  authors: Record<string, string>;
  card: Card;
  script: string;
  result_codes: ResultCode[];
  default_result_code_id: number | null;
  queue: { id: number; name: string; manual_pick: boolean; wrap_up_seconds: number } | null;
  transfer: { queues: Named[]; operators: Named[] };
  /** Published scenarios the conversation can be handed to (e.g. a survey). */
  bot_scenarios?: { key: string; name: string }[];
  /** Telephony facts of a voice conversation (``workspace.call_dict``); null for chats. */
  call?: CallFacts | null;
  /** The campaign card of a conversation the outbound engine placed; null otherwise. */
  campaign?: CampaignCard | null;
}

export interface CallFacts {
  state: "ringing" | "talking" | "on_hold" | "ended";
  direction: "in" | "out";
  number: string;
  answered_at: string | null;
  ended_at: string | null;
  hold_started_at: string | null;
  ring_seconds: number;
  talk_seconds: number;
  hold_seconds: number;
  recording: boolean;
  recording_url: string | null;
}

/** A queue the operator can place calls from (boot data ``dial_queues``). */
export interface DialQueue {
  id: number;
  name: string;
}

export interface HistoryEntry extends Conversation {
  result_code_name: string | null;
  messages: Message[];
}

export interface Canned {
  id: number;
  shortcut: string;
  title: string;
  body: string;
  text: string;
  scope: "global" | "queue" | "personal";
}

export interface StatusOption {
  code: string;
  name: string;
  colour: string;
  selectable: boolean;
  receives_chats: boolean;
  receives_voice: boolean;
  max_duration_seconds: number | null;
}

/** One pushed event; narrow on ``type`` to get its typed payload. */
export type WireEvent = AnyWireEvent;

export interface Snapshot {
  presence: Presence;
  conversations: Conversation[];
  offers: Offer[];
  waiting: Conversation[];
  callbacks: Callback[];
  last_seq: number;
}

/** The channel's icon (inline SVG: emoji render as empty boxes without an emoji font). */
export function channelIcon(channel: string | null | undefined, medium?: string): SVGSVGElement {
  return channelSvg(channel, medium);
}
