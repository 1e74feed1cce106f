// The scenario document as the builder edits it (mirrors bots/scenario.py; the server validates).

export type Ports = Record<string, string | null>;

export interface Content {
  text: string;
  text_ru?: string;
  channels?: Record<string, string>;
  prompt?: string;
  /** A prompt of the prompt manager (played on calls instead of TTS). */
  prompt_id?: number | null;
}

export interface MenuOption {
  id: string;
  label: string;
  label_ru?: string;
  dtmf?: string;
}

/** One node; kind-specific fields are read and written by the forms. */
export interface BNode {
  id: string;
  type: string;
  title?: string;
  ports: Ports;
  [field: string]: unknown;
}

export interface Variable {
  name: string;
  type: string;
  scope: string;
  default?: unknown;
}

export interface Doc {
  schema_version: number;
  name: string;
  start: string;
  variables: Variable[];
  nodes: BNode[];
  layout: Record<string, { x: number; y: number }>;
}

export interface Problem {
  node: string | null;
  code: string;
  message: string;
  /** The port of a port problem (``port_unconnected``, ``port_target``). */
  port?: string | null;
}

export interface Revision {
  id: number;
  number: number;
  published_at: string;
  note: string;
  active?: boolean;
}

export interface ScenarioDetail {
  id: number;
  key: string;
  name: string;
  active_revision_id: number | null;
  updated_at: string;
  draft: Doc;
  problems: Problem[];
  active_revision: Revision | null;
}

export interface Say {
  node: string;
  text: string;
  buttons: { id: string; label: string }[];
}

export interface Transcript {
  says: Say[];
  path: string[];
  steps: { node: string; outcome: string }[];
  variables: Record<string, unknown>;
  handoff: Record<string, unknown> | null;
  closed: string | null;
  goto: string | null;
  status: string;
  waiting: string;
  node: string | null;
  error: string;
}

export interface NodeStats {
  entered: number;
  left: number;
  waiting: number;
  dropped: number;
  invalid: number;
  no_input: number;
  invalid_rate: number;
  ports: Record<string, number>;
}

export interface Option {
  id: number;
  name: string;
}

export interface BuilderBoot {
  view: "list" | "edit";
  scenario_id?: number;
  readonly: boolean;
  channels: string[];
  queues: Option[];
  result_codes: string[];
  scenario_keys: string[];
  /** The prompt manager's prompts, for the voice prompt picker. */
  prompts?: PromptChoice[];
}

export interface PromptChoice {
  id: number;
  folder: string;
  name: string;
  audio_url: string;
}
