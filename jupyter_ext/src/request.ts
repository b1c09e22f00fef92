import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

/** The options of `POST /nb2pkg/convert` (see docs/labext.md). */
export interface IConvertOptions {
  extract: boolean;
  pipeline: boolean;
  verify: boolean;
  force: boolean;
  /** Update the earlier conversion in the output folder (`nb2pkg update`) instead. */
  update?: boolean;
}

export interface IConvertRequest {
  /** Notebook path relative to the server root. */
  path: string;
  /** Output folder relative to the server root. */
  output: string;
  /** Package name; empty lets nb2pkg choose. */
  name: string;
  options: IConvertOptions;
  /** Client-chosen id under which the server publishes progress messages. */
  job?: string;
}

/** `ConvertReport.to_dict()` plus the server-root-relative paths the lab needs. */
export interface IConvertSummary {
  package: string;
  output: string;
  files: string[];
  extracted: unknown[];
  refused: unknown[];
  hoisted: unknown[];
  kept?: unknown[];
  loops?: unknown[];
  loops_refused?: unknown[];
  findings: unknown[];
  verification: unknown;
  lab: {
    /** Output folder relative to the server root. */
    output: string;
    /** Generated README relative to the server root, or null when there is none. */
    readme: string | null;
  };
}

/** `UpdateReport.to_dict()` plus the lab's paths: the answer when `options.update` is set. */
export interface IUpdateSummary {
  package: string;
  /** Where the project as it was is kept, relative to the project. */
  previous: string;
  files: { path: string; action: string; detail: string; copy: string | null }[];
  conflicts: string[];
  lab: {
    output: string;
    readme: string | null;
  };
}

export interface IProgress {
  messages: string[];
}

/** `GET /nb2pkg/defaults`: what the form suggests, by the server's (the CLI's) rules. */
export interface IDefaults {
  /** Package name. */
  name: string;
  /** Output folder relative to the server root. */
  output: string;
  /** The output folder holds an earlier conversion of this notebook: offer an update. */
  update: boolean;
}

/** A refusal or failure reported by the server, carrying its readable message. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    /** The request field at fault (`path`, `output`, `name`), when the server named one. */
    readonly field: string | null = null
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

/**
 * Call an endpoint under `<base_url>/nb2pkg/` and return its JSON answer.
 *
 * Every failure becomes an `ApiError` whose message can be shown to the user as is:
 * the server's own `message` when it sent one, else a sentence naming the status.
 */
export async function requestAPI<T>(
  settings: ServerConnection.ISettings,
  endPoint: string,
  init: RequestInit = {}
): Promise<T> {
  const url = URLExt.join(settings.baseUrl, 'nb2pkg', endPoint);
  let response: Response;
  try {
    response = await ServerConnection.makeRequest(url, init, settings);
  } catch (error) {
    throw new ApiError(
      0,
      `Cannot reach the Jupyter server (${(error as Error).message}).`
    );
  }
  const text = await response.text();
  let data: any = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = null;
    }
  }
  if (!response.ok) {
    const message =
      data && typeof data.message === 'string' && data.message
        ? data.message
        : `The server answered ${response.status} ${response.statusText}.`;
    const field = data && typeof data.field === 'string' ? data.field : null;
    throw new ApiError(response.status, message, field);
  }
  if (data === null) {
    throw new ApiError(response.status, 'The server sent an empty answer.');
  }
  return data as T;
}

export function convert(
  settings: ServerConnection.ISettings,
  request: IConvertRequest
): Promise<IConvertSummary> {
  return requestAPI<IConvertSummary>(settings, 'convert', {
    method: 'POST',
    body: JSON.stringify(request)
  });
}

export function progress(
  settings: ServerConnection.ISettings,
  job: string
): Promise<IProgress> {
  return requestAPI<IProgress>(
    settings,
    URLExt.join('progress', encodeURIComponent(job))
  );
}

export function defaults(
  settings: ServerConnection.ISettings,
  path: string
): Promise<IDefaults> {
  return requestAPI<IDefaults>(settings, `defaults?path=${encodeURIComponent(path)}`);
}

/** `POST /nb2pkg/convert` with `options.update`: merge into the earlier conversion. */
export function update(
  settings: ServerConnection.ISettings,
  request: Omit<IConvertRequest, 'options'>
): Promise<IUpdateSummary> {
  return requestAPI<IUpdateSummary>(settings, 'convert', {
    method: 'POST',
    body: JSON.stringify({ ...request, options: { update: true } })
  });
}
