import { PathExt } from '@jupyterlab/coreutils';

// Python's keywords and soft keywords: none of them may name a package.
const PYTHON_KEYWORDS = new Set([
  'False', 'None', 'True', 'and', 'as', 'assert', 'async', 'await', 'break',
  'case', 'class', 'continue', 'def', 'del', 'elif', 'else', 'except',
  'finally', 'for', 'from', 'global', 'if', 'import', 'in', 'is', 'lambda',
  'match', 'nonlocal', 'not', 'or', 'pass', 'raise', 'return', 'try', 'type',
  'while', 'with', 'yield'
]); // prettier-ignore

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** The notebook's file name without its extension. */
export function notebookStem(path: string): string {
  return PathExt.basename(path, PathExt.extname(path));
}

/**
 * A valid, lower-case Python package name derived from a notebook's file name:
 * accents dropped, every other run of non-identifier characters becomes `_`.
 */
export function packageNameFor(notebookPath: string): string {
  let name = notebookStem(notebookPath)
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '')
    .toLowerCase()
    .replace(/[^a-z0-9_]+/g, '_')
    .replace(/_+/g, '_')
    .replace(/^_+|_+$/g, '');
  if (!name) {
    name = 'notebook';
  }
  if (/^[0-9]/.test(name)) {
    name = `pkg_${name}`;
  }
  if (PYTHON_KEYWORDS.has(name)) {
    name = `${name}_pkg`;
  }
  return name;
}

/** The default output folder: `<stem>_pkg` beside the notebook. */
export function outputFolderFor(notebookPath: string): string {
  return PathExt.join(
    PathExt.dirname(notebookPath),
    `${notebookStem(notebookPath)}_pkg`
  );
}

/** Why `name` cannot name a package, or null when it can (empty means "let nb2pkg choose"). */
export function packageNameProblem(name: string): string | null {
  if (name === '') {
    return null;
  }
  if (!IDENTIFIER.test(name)) {
    return `"${name}" is not a valid package name: use letters, digits and underscores, not starting with a digit.`;
  }
  if (PYTHON_KEYWORDS.has(name)) {
    return `"${name}" is a Python keyword and cannot name a package.`;
  }
  return null;
}

/** Why `output` cannot be used as the output folder, or null when the server may judge it. */
export function outputFolderProblem(output: string): string | null {
  if (output.trim() === '') {
    return 'Give an output folder (relative to the Jupyter root).';
  }
  if (output.startsWith('/')) {
    return 'The output folder must be relative to the Jupyter root, not an absolute path.';
  }
  return null;
}
