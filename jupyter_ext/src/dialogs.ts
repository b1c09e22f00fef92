import { Dialog } from '@jupyterlab/apputils';
import { Widget } from '@lumino/widgets';

import { IConvertOptions, IConvertSummary, IUpdateSummary } from './request';

/** What the user chose in the convert dialog. */
export interface IFormValues {
  name: string;
  output: string;
  options: Omit<IConvertOptions, 'force' | 'update'>;
}

const OPTION_LABELS: [keyof IFormValues['options'], string, string][] = [
  ['extract', 'Extract repeated code', 'into functions in the package'],
  ['pipeline', 'Build pipeline', 'stage notebooks and pipeline.yaml'],
  ['verify', 'Verify by executing', 'runs both notebooks on a kernel; slower']
];

function element<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  props: Partial<HTMLElementTagNameMap[K]> = {},
  ...children: (Node | string)[]
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  Object.assign(node, props);
  node.append(...children);
  return node;
}

/** The body of the convert dialog: package name, output folder and options. */
export class ConvertForm extends Widget implements Dialog.IBodyWidget<IFormValues> {
  constructor(initial: IFormValues) {
    super();
    this.addClass('jp-nb2pkg-form');
    this._name = element('input', {
      type: 'text',
      name: 'name',
      value: initial.name,
      className: 'jp-mod-styled',
      spellcheck: false
    });
    this._output = element('input', {
      type: 'text',
      name: 'output',
      value: initial.output,
      className: 'jp-mod-styled',
      spellcheck: false
    });
    const options = element(
      'fieldset',
      { className: 'jp-nb2pkg-options' },
      element('legend', {}, 'Options')
    );
    for (const [key, label, hint] of OPTION_LABELS) {
      const box = element('input', {
        type: 'checkbox',
        name: key,
        checked: initial.options[key]
      });
      this._boxes.set(key, box);
      options.append(
        element(
          'label',
          {},
          box,
          label,
          element('span', { className: 'jp-nb2pkg-hint' }, `(${hint})`)
        )
      );
    }
    this.node.append(
      element(
        'label',
        { className: 'jp-nb2pkg-field' },
        element('span', {}, 'Package name'),
        this._name
      ),
      element(
        'label',
        { className: 'jp-nb2pkg-field' },
        element('span', {}, 'Output folder'),
        this._output,
        element(
          'span',
          { className: 'jp-nb2pkg-hint' },
          'Relative to the Jupyter root; created if missing.'
        )
      ),
      options
    );
  }

  getValue(): IFormValues {
    const checked = (key: keyof IFormValues['options']) =>
      this._boxes.get(key)!.checked;
    return {
      name: this._name.value.trim(),
      output: this._output.value.trim().replace(/\/+$/, ''),
      options: {
        extract: checked('extract'),
        pipeline: checked('pipeline'),
        verify: checked('verify')
      }
    };
  }

  private _name: HTMLInputElement;
  private _output: HTMLInputElement;
  private _boxes = new Map<keyof IFormValues['options'], HTMLInputElement>();
}

/** A spinner and the latest progress message. */
export class ProgressBody extends Widget {
  constructor(text: string) {
    super();
    this.addClass('jp-nb2pkg-progress');
    this._text = element('span', {}, text);
    this.node.append(element('div', { className: 'jp-nb2pkg-spinner' }), this._text);
  }

  set text(value: string) {
    this._text.textContent = value;
  }

  private _text: HTMLSpanElement;
}

interface IOccurrence {
  cell: number;
  first_line?: number;
  last_line?: number;
}

function cells(occurrences: unknown): string {
  const list = Array.isArray(occurrences) ? (occurrences as IOccurrence[]) : [];
  const numbers = [...new Set(list.map(o => o.cell))];
  if (!numbers.length) {
    return '';
  }
  return `${numbers.length > 1 ? 'cells' : 'cell'} ${numbers.join(', ')}`;
}

function joined(...parts: (string | false | null | undefined)[]): string {
  return parts.filter(Boolean).join('');
}

/** `, takes churn_threshold (was the notebook's CHURN_THRESHOLD)`: a moved function that now
 * takes the notebook variables it read as parameters (the CLI says the same). */
function lifted(value: any): string {
  const parameters: any[] = Array.isArray(value?.parameters) ? value.parameters : [];
  if (!parameters.length) {
    return '';
  }
  const was = parameters.length === 1 ? 'was' : 'were';
  return `, takes ${parameters.map(p => p.parameter).join(', ')} (${was} the notebook's ${parameters
    .map(p => p.variable)
    .join(', ')})`;
}

/** One line per report entry, by section; anything unexpected falls back to `describe`. */
const FORMATS: Record<string, (item: any) => string> = {
  extracted: e =>
    joined(
      `${e.module}.${e.function}(${(e.parameters ?? []).join(', ')})`,
      e.returns?.length && ` -> ${e.returns.join(', ')}`,
      cells(e.occurrences) && ` (from ${cells(e.occurrences)})`
    ),
  refused: r => joined(cells(r.occurrences) && `${cells(r.occurrences)}: `, r.reason),
  hoisted: h =>
    joined(
      `${h.kind ?? ''} ${h.name} → ${h.module}`.trim(),
      h.cell !== undefined && ` (cell ${h.cell})`,
      lifted(h.lifted)
    ),
  loops: l =>
    joined(
      l.function
        ? `in ${l.function}`
        : `cell ${l.cell}, lines ${l.first_line}-${l.last_line}`,
      `: ${l.statements} statements → a loop over ${(l.variables ?? []).join(', ')}`
    ),
  loops_refused: l =>
    joined(
      l.function
        ? `in ${l.function}`
        : `cell ${l.cell}, lines ${l.first_line}-${l.last_line}`,
      `: ${l.reason}`
    ),
  kept: k =>
    joined(
      `${k.name}`,
      k.cell !== undefined && ` (cell ${k.cell})`,
      k.reason && `: ${k.reason}`
    ),
  findings: f =>
    joined(
      typeof f.cell === 'number' && `cell ${f.cell}`,
      typeof f.line === 'number' && `, line ${f.line}`,
      typeof f.cell === 'number' && ': ',
      f.code && `[${f.code}] `,
      f.message,
      f.hint && ` (${f.hint})`
    )
};

/** One line describing anything: a string, or a record with a message, reason or name. */
export function describe(item: unknown): string {
  if (typeof item === 'string') {
    return item;
  }
  if (item && typeof item === 'object') {
    const record = item as Record<string, unknown>;
    for (const key of ['message', 'reason', 'summary', 'name']) {
      if (typeof record[key] === 'string' && record[key]) {
        return record[key] as string;
      }
    }
  }
  return JSON.stringify(item);
}

function format(kind: string, item: unknown): string {
  try {
    const text = FORMATS[kind]?.(item);
    if (text && !text.includes('undefined')) {
      return text;
    }
  } catch {
    // fall through: show the entry as it came
  }
  return describe(item);
}

function section(
  title: string,
  kind: string,
  items: unknown[] | undefined,
  empty: string | null
): HTMLElement[] {
  const list = items ?? [];
  if (!list.length && empty === null) {
    return [];
  }
  const heading = element('h3', {}, `${title} (${list.length})`);
  if (!list.length) {
    return [heading, element('div', { className: 'jp-nb2pkg-muted' }, empty ?? '')];
  }
  return [
    heading,
    element('ul', {}, ...list.map(item => element('li', {}, format(kind, item))))
  ];
}

const DIFF_LINES = 40;

/** The verdict of `--verify`, and for each differing notebook where and why it differs. */
function verification(result: any): HTMLElement[] {
  if (result === null || result === undefined) {
    return [
      element(
        'div',
        { className: 'jp-nb2pkg-muted' },
        'Not run (tick "Verify by executing" to compare outputs).'
      )
    ];
  }
  if (typeof result.equivalent !== 'boolean') {
    return [element('div', {}, describe(result))];
  }
  if (result.equivalent) {
    return [
      element('div', {}, 'The refactored notebooks print what the originals print.')
    ];
  }
  const parts: HTMLElement[] = [
    element(
      'div',
      { className: 'jp-nb2pkg-warning' },
      'The refactored notebooks do not print what the originals print.'
    )
  ];
  for (const notebook of result.notebooks ?? []) {
    if (notebook.equivalent) {
      continue;
    }
    const suspects: string[] = notebook.suspects ?? [];
    parts.push(
      element(
        'div',
        {},
        `First difference at cell ${notebook.first_difference_cell}` +
          (suspects.length ? `; likely cause: ${suspects.join('; ')}` : '.')
      )
    );
    const diff: string[] = notebook.diff ?? [];
    if (diff.length) {
      parts.push(
        element(
          'pre',
          { className: 'jp-nb2pkg-diff' },
          diff.slice(0, DIFF_LINES).join('\n')
        )
      );
    }
  }
  return parts;
}

/** The body of the result dialog: what was extracted or refused, findings, files. */
export function summaryBody(summary: IConvertSummary): Widget {
  const body = new Widget();
  body.addClass('jp-nb2pkg-summary');
  const files = element(
    'details',
    {},
    element('summary', {}, `Files written (${summary.files.length})`),
    element(
      'ul',
      {},
      ...summary.files.map(file => element('li', {}, element('code', {}, file)))
    )
  );
  body.node.append(
    element(
      'p',
      {},
      'Package ',
      element('code', {}, summary.package),
      ' written to ',
      element('code', {}, summary.lab.output + '/'),
      '.'
    ),
    ...section(
      'Extracted functions',
      'extracted',
      summary.extracted,
      'No repeated code was extracted.'
    ),
    ...section(
      'Not extracted',
      'refused',
      summary.refused,
      'No repeated block was refused.'
    ),
    ...section(
      'Moved into the package',
      'hoisted',
      summary.hoisted,
      'Nothing was moved.'
    ),
    ...section('Kept in the notebook', 'kept', summary.kept, null),
    ...section('Lines rolled into loops', 'loops', summary.loops ?? [], null),
    ...section('Not rolled', 'loops_refused', summary.loops_refused ?? [], null),
    ...section('Findings', 'findings', summary.findings, 'No findings.'),
    element('h3', {}, 'Verification'),
    ...verification(summary.verification),
    files
  );
  return body;
}

/** The body of the result dialog of an update: conflicts first, then what changed. */
export function updateBody(summary: IUpdateSummary): Widget {
  const body = new Widget();
  body.addClass('jp-nb2pkg-summary');
  const conflicts = summary.files.filter(file => file.action === 'conflict');
  const others = summary.files.filter(file => file.action !== 'conflict');
  const line = (file: IUpdateSummary['files'][number]) =>
    element(
      'li',
      {},
      element('code', {}, file.path),
      ` ${file.action}: ${file.detail}`
    );
  body.node.append(
    element(
      'p',
      {},
      'Package ',
      element('code', {}, summary.package),
      ' in ',
      element('code', {}, summary.lab.output + '/'),
      ' updated from the notebook; the project as it was is in ',
      element('code', {}, `${summary.lab.output}/${summary.previous}/`),
      '.'
    ),
    element('h3', {}, `Conflicts (${conflicts.length})`),
    conflicts.length
      ? element('ul', {}, ...conflicts.map(line))
      : element(
          'p',
          { className: 'jp-nb2pkg-muted' },
          'None: your edits and the notebook merged.'
        ),
    element(
      'details',
      {},
      element('summary', {}, `Other changes (${others.length})`),
      element('ul', {}, ...others.map(line))
    )
  );
  return body;
}
