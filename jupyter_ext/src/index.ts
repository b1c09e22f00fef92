import { JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { Dialog, showDialog, showErrorMessage } from '@jupyterlab/apputils';
import { DocumentRegistry, DocumentWidget } from '@jupyterlab/docregistry';
import { LabIcon, ToolbarButton } from '@jupyterlab/ui-components';
import { UUID } from '@lumino/coreutils';
import { DisposableDelegate, IDisposable } from '@lumino/disposable';
import { Widget } from '@lumino/widgets';

import {
  ConvertForm,
  IFormValues,
  ProgressBody,
  summaryBody,
  updateBody
} from './dialogs';
import {
  ApiError,
  convert,
  defaults,
  IConvertSummary,
  IUpdateSummary,
  progress,
  update
} from './request';

/** Name of the toolbar item: the button is `[data-jp-item-name="nb2pkg-convert"] button`. */
export const TOOLBAR_ITEM = 'nb2pkg-convert';
const TITLE = 'Convert to package';
const POLL_MS = 700;

export const packageIcon = new LabIcon({
  name: 'nb2pkg:package',
  svgstr:
    '<svg xmlns="http://www.w3.org/2000/svg" width="16" height="16" viewBox="0 0 24 24">' +
    '<g class="jp-icon3" fill="#616161"><path d="M12 1.8 2.5 6.6v10.8l9.5 4.8 9.5-4.8V6.6L12 ' +
    '1.8zm0 2.2 6.9 3.5-2.7 1.4-6.9-3.5L12 4zM7.2 6.4l6.9 3.5L12 11 5.1 7.5l2.1-1.1zM4.5 ' +
    '9.1l6.5 3.3v7.3l-6.5-3.3V9.1zm15 7.3-6.5 3.3v-7.3l2.5-1.3v2.7l2-1v-2.7l2-1v7.3z"/></g></svg>'
});

/** Run `work` while a dialog with a spinner shows the server's latest progress message. */
async function withProgress<T>(
  app: JupyterFrontEnd,
  job: string,
  work: Promise<T>
): Promise<T> {
  const body = new ProgressBody('Converting…');
  const dialog = new Dialog({
    title: TITLE,
    body,
    buttons: [Dialog.cancelButton({ label: 'Hide' })],
    hasClose: false
  });
  // Closing the dialog only hides it; the conversion goes on and its result still shows.
  dialog.launch().catch(() => undefined);
  const settings = app.serviceManager.serverSettings;
  const timer = window.setInterval(() => {
    progress(settings, job)
      .then(reply => {
        const last = reply.messages[reply.messages.length - 1];
        if (last) {
          body.text = last;
        }
      })
      .catch(() => undefined);
  }, POLL_MS);
  try {
    return await work;
  } finally {
    window.clearInterval(timer);
    dialog.dispose();
  }
}

/** Ask for name, output and options; null when the user cancels. The server judges them. */
async function askOptions(initial: IFormValues): Promise<IFormValues | null> {
  const result = await showDialog<IFormValues>({
    title: TITLE,
    body: new ConvertForm(initial),
    buttons: [Dialog.cancelButton(), Dialog.okButton({ label: 'Convert' })],
    focusNodeSelector: 'input[name="name"]'
  });
  return result.button.accept && result.value ? result.value : null;
}

async function confirmOverwrite(output: string, message: string): Promise<boolean> {
  const body = new Widget();
  const question = document.createElement('p');
  question.textContent = `Replace the contents of "${output}"?`;
  const reason = document.createElement('p');
  reason.className = 'jp-nb2pkg-muted';
  reason.textContent = message;
  body.node.append(question, reason);
  const result = await showDialog({
    title: 'Overwrite output folder?',
    body,
    buttons: [Dialog.cancelButton(), Dialog.warnButton({ label: 'Overwrite' })]
  });
  return result.button.accept;
}

async function showSummary(
  app: JupyterFrontEnd,
  summary: IConvertSummary
): Promise<void> {
  const buttons = [
    Dialog.cancelButton({ label: 'Close' }),
    Dialog.okButton({ label: 'Open folder' })
  ];
  if (summary.lab.readme) {
    buttons.push(Dialog.okButton({ label: 'Open README' }));
  }
  const result = await showDialog({
    title: `Package ${summary.package} created`,
    body: summaryBody(summary),
    buttons,
    defaultButton: buttons.length - 1
  });
  if (!result.button.accept) {
    return;
  }
  if (result.button.label === 'Open README' && summary.lab.readme) {
    const path = summary.lab.readme;
    // Rendered when the Markdown viewer is available, else in the default editor.
    await app.commands
      .execute('docmanager:open', { path, factory: 'Markdown Preview' })
      .catch(() => app.commands.execute('docmanager:open', { path }));
  } else {
    await app.commands.execute('filebrowser:go-to-path', { path: summary.lab.output });
  }
}

/**
 * The folder holds an earlier conversion of this notebook (the server said so): offer
 * 'Update package'. True when the user chose it, false for a new conversion, null to cancel.
 */
async function offerUpdate(output: string): Promise<boolean | null> {
  const body = new Widget();
  const text = document.createElement('p');
  text.textContent =
    `"${output}" holds an earlier conversion of this notebook. Updating it converts again ` +
    "and merges: your edits to the package stay, the notebook's changes come in, conflicts " +
    'are marked, and the project as it was is kept.';
  body.node.append(text);
  const result = await showDialog({
    title: TITLE,
    body,
    buttons: [
      Dialog.cancelButton(),
      Dialog.okButton({ label: 'Convert anew…', displayType: 'default' }),
      Dialog.okButton({ label: 'Update package' })
    ]
  });
  if (!result.button.accept) {
    return null;
  }
  return result.button.label === 'Update package';
}

async function showUpdateSummary(
  app: JupyterFrontEnd,
  summary: IUpdateSummary
): Promise<void> {
  const result = await showDialog({
    title: summary.conflicts.length
      ? `Package ${summary.package} updated with ${summary.conflicts.length} conflict(s)`
      : `Package ${summary.package} updated`,
    body: updateBody(summary),
    buttons: [
      Dialog.cancelButton({ label: 'Close' }),
      Dialog.okButton({ label: 'Open folder' })
    ]
  });
  if (result.button.accept) {
    await app.commands.execute('filebrowser:go-to-path', { path: summary.lab.output });
  }
}

/** The whole flow behind the toolbar button, for one notebook. */
export async function convertNotebook(
  app: JupyterFrontEnd,
  context: DocumentRegistry.Context
): Promise<void> {
  try {
    if (context.model.dirty) {
      await context.save();
    }
  } catch (error) {
    await showErrorMessage(
      TITLE,
      `Could not save the notebook first: ${(error as Error).message}`
    );
    return;
  }
  const path = app.serviceManager.contents.localPath(context.path);
  const settings = app.serviceManager.serverSettings;
  let values: IFormValues;
  try {
    // The server suggests name and folder by the rules the command line uses.
    const suggested = await defaults(settings, path);
    if (suggested.update) {
      const chosen = await offerUpdate(suggested.output);
      if (chosen === null) {
        return;
      }
      if (chosen) {
        const job = UUID.uuid4();
        const request = { path, output: suggested.output, name: suggested.name, job };
        const summary = await withProgress(app, job, update(settings, request));
        await showUpdateSummary(app, summary);
        return;
      }
    }
    values = {
      name: suggested.name,
      output: suggested.output,
      options: { extract: true, pipeline: true, verify: false }
    };
  } catch (error) {
    await showErrorMessage(`${TITLE} failed`, (error as Error).message);
    return;
  }
  for (;;) {
    const chosen = await askOptions(values);
    if (!chosen) {
      return;
    }
    values = chosen;
    if (!(await convertWith(app, path, values))) {
      return;
    }
  }
}

/**
 * Convert with the form's values, asking before replacing an existing folder, and show the
 * result. True when the server refused a field of the form: the caller shows it again.
 */
async function convertWith(
  app: JupyterFrontEnd,
  path: string,
  values: IFormValues
): Promise<boolean> {
  const settings = app.serviceManager.serverSettings;
  let force = false;
  for (;;) {
    const job = UUID.uuid4();
    const request = {
      path,
      output: values.output,
      name: values.name,
      options: { ...values.options, force },
      job
    };
    try {
      const summary = await withProgress(app, job, convert(settings, request));
      await showSummary(app, summary);
      return false;
    } catch (error) {
      if (error instanceof ApiError && error.status === 409 && !force) {
        if (!(await confirmOverwrite(values.output, error.message))) {
          return false;
        }
        force = true;
        continue;
      }
      const message =
        error instanceof ApiError
          ? error.message
          : `Unexpected error: ${(error as Error).message}`;
      await showErrorMessage(`${TITLE} failed`, message);
      return (
        error instanceof ApiError &&
        (error.field === 'name' || error.field === 'output')
      );
    }
  }
}

/** Adds the button to every notebook's toolbar. */
class ConvertButtonExtension implements DocumentRegistry.IWidgetExtension<
  DocumentWidget,
  DocumentRegistry.IModel
> {
  constructor(private _app: JupyterFrontEnd) {}

  createNew(panel: DocumentWidget, context: DocumentRegistry.Context): IDisposable {
    const button = new ToolbarButton({
      icon: packageIcon,
      tooltip: `${TITLE}…`,
      label: 'Package',
      onClick: () => void convertNotebook(this._app, context)
    });
    panel.toolbar.insertItem(10, TOOLBAR_ITEM, button);
    return new DisposableDelegate(() => button.dispose());
  }
}

const plugin: JupyterFrontEndPlugin<void> = {
  id: 'nb2pkg:plugin',
  description:
    'A notebook toolbar button that turns the notebook into an installable package.',
  autoStart: true,
  activate: (app: JupyterFrontEnd) => {
    app.docRegistry.addWidgetExtension('Notebook', new ConvertButtonExtension(app));
  }
};

export default plugin;
