"""The toolbar button end to end: real jupyter lab, headless system Chromium, files on disk."""

from __future__ import annotations

import os
import re

import nbformat
import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"]
BUTTON = '[data-jp-item-name="nb2pkg-convert"] button'
DIALOG = ".jp-Dialog-content"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.xdist_group("lab-browser"),  # one JupyterLab, one Chromium
    pytest.mark.jupyter_server,
    pytest.mark.timeout(240),
    pytest.mark.skipif(not os.path.exists(CHROMIUM),
                       reason=f"browser test needs Chromium at {CHROMIUM} "
                              "(apt-get install -y chromium)"),
]


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api",
                                   reason="browser test needs playwright (pip install playwright)")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                             args=CHROMIUM_FLAGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser, lab_server, built_labextension):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(60_000)
    yield page
    shot = os.environ.get("NB2PKG_LABEXT_SCREENSHOT")
    if shot:  # during development: look at the last state of the page
        page.screenshot(path=shot)
    context.close()


def open_notebook(page, lab_server, path: str) -> None:
    # `reset`: start from an empty workspace, not the tabs an earlier test left open.
    page.goto(f"{lab_server.url}/lab/tree/{path}?reset&token={lab_server.token}")
    page.locator(BUTTON).wait_for(state="visible")


def dialog(page):
    return page.locator(DIALOG).last


def result_text(page) -> str:
    """The text of the dialog that ends a conversion, success or failure, once it shows."""
    done = page.locator(DIALOG).filter(has_text=re.compile(r"Package \w+ created|failed"))
    done.wait_for()
    return done.inner_text()


def test_button_converts_the_open_notebook(page, lab_server, workdir, demo_notebook) -> None:
    folder, rel = workdir
    demo_notebook(folder / "demo notebook.ipynb")
    open_notebook(page, lab_server, f"{rel}/demo notebook.ipynb")

    page.locator(BUTTON).click()
    form = dialog(page)
    form.get_by_text("Convert to package").wait_for()
    name = form.locator('input[name="name"]')
    output = form.locator('input[name="output"]')
    assert name.input_value() == "demo_notebook"
    assert output.input_value() == f"{rel}/demo notebook_pkg"
    assert form.locator('input[name="extract"]').is_checked()
    assert form.locator('input[name="pipeline"]').is_checked()
    assert not form.locator('input[name="verify"]').is_checked()
    name.fill("demo_pkg")
    output.fill(f"{rel}/demo_pkg")
    form.get_by_role("button", name="Convert", exact=True).click()

    text = result_text(page)
    assert "Package demo_pkg created" in text, text
    result = dialog(page)
    for heading in ("Extracted functions", "Not extracted", "Lines rolled into loops (1)",
                    "Findings", "Verification", "Files written"):
        assert heading in text
    assert "cell 6, lines 2-4: 3 statements → a loop over key, size" in text
    assert "function over → demo_pkg.demo_notebook (cell 7), takes limit (was the notebook's LIMIT)" in text
    assert f"{rel}/demo_pkg/" in text
    output_dir = folder / "demo_pkg"
    assert (output_dir / "README.md").is_file()
    assert any(p.is_file() for p in output_dir.rglob("*.py"))

    if (output_dir / "README.md").is_file():
        result.get_by_role("button", name="Open README").click()
        page.locator('.lm-TabBar-tab:has-text("README.md")').wait_for()
    else:
        result.get_by_role("button", name="Open folder").click()
    page.locator(DIALOG).wait_for(state="detached")

    # Converting again into the same folder asks before overwriting.
    (output_dir / "stale.txt").write_text("left over")
    page.locator('.lm-TabBar-tab:has-text("demo notebook.ipynb")').click()
    page.locator(BUTTON).click()
    form = dialog(page)
    form.locator('input[name="name"]').fill("demo_pkg")
    form.locator('input[name="output"]').fill(f"{rel}/demo_pkg")
    form.get_by_role("button", name="Convert", exact=True).click()
    confirm = dialog(page)
    confirm.get_by_text("Overwrite output folder?").wait_for()
    confirm.get_by_role("button", name="Overwrite").click()
    text = result_text(page)
    assert "Package demo_pkg created" in text, text
    assert not (output_dir / "stale.txt").exists()
    dialog(page).get_by_role("button", name="Close").click()


def test_errors_are_readable_messages(page, lab_server, workdir, demo_notebook) -> None:
    folder, rel = workdir
    saved = demo_notebook(folder / "demo.ipynb")
    open_notebook(page, lab_server, f"{rel}/demo.ipynb")
    cells = len(nbformat.read(saved, as_version=4).cells)

    # An unsaved change (a new cell) is saved before the dialog opens.
    page.locator(".jp-Notebook .jp-InputPrompt").first.click()
    page.keyboard.press("Escape")
    page.keyboard.press("b")
    page.locator(".jp-Notebook .jp-Cell").nth(cells).wait_for()
    page.locator(BUTTON).click()
    form = dialog(page)
    form.locator('input[name="output"]').wait_for()
    assert len(nbformat.read(saved, as_version=4).cells) == cells + 1
    form.locator('input[name="output"]').fill("../elsewhere")
    form.get_by_role("button", name="Convert", exact=True).click()
    text = result_text(page)
    assert "Convert to package failed" in text
    assert "outside the Jupyter root" in text
    assert "Traceback" not in text
    dialog(page).get_by_role("button").last.click()

    # The server refused a field of the form: the form comes back with what the user typed.
    # It judges the package name by the command line's rule and says what it would be.
    form = dialog(page)
    assert form.locator('input[name="output"]').input_value() == "../elsewhere"
    form.locator('input[name="output"]').fill(f"{rel}/demo_pkg")
    form.locator('input[name="name"]').fill("2 bad")
    form.get_by_role("button", name="Convert", exact=True).click()
    dialog(page).get_by_text("'2 bad' cannot name a package; nb2pkg would call it 'nb_2_bad'"
                             ).wait_for()
    dialog(page).get_by_role("button").last.click()
    assert dialog(page).locator('input[name="name"]').input_value() == "2 bad"
    dialog(page).get_by_role("button", name="Cancel").click()
    assert not (folder / "demo_pkg").exists()


def test_dialog_suggests_the_command_lines_name(page, lab_server, workdir, notebook) -> None:
    """The lab used to compute its own names ("class" for class.ipynb, "salesreport")."""
    from nb2pkg.refactor.naming import package_name

    folder, rel = workdir
    for stem in ("class", "SalesReport"):
        notebook(folder / f"{stem}.ipynb", "x = 1")
        open_notebook(page, lab_server, f"{rel}/{stem}.ipynb")
        page.locator(BUTTON).click()
        form = dialog(page)
        form.get_by_text("Convert to package").wait_for()
        assert form.locator('input[name="name"]').input_value() == package_name(stem)
        assert form.locator('input[name="output"]').input_value() == f"{rel}/{stem}_pkg"
        form.get_by_role("button", name="Cancel").click()
        page.locator(DIALOG).wait_for(state="detached")


def test_update_package_keeps_the_users_edits_and_brings_the_notebooks_changes(
        page, lab_server, workdir, notebook) -> None:
    """Converting again into a folder that holds this notebook's conversion offers "Update
    package": the user's edit of the project stays, the notebook's new code comes in, and the
    project as it was is kept."""
    folder, rel = workdir
    path = notebook(folder / "grow.ipynb", "def double(v):\n    return v * 2", "print(double(3))")
    open_notebook(page, lab_server, f"{rel}/grow.ipynb")
    page.locator(BUTTON).click()
    form = dialog(page)
    form.get_by_text("Convert to package").wait_for()
    form.get_by_role("button", name="Convert", exact=True).click()
    assert "Package grow created" in result_text(page)
    dialog(page).get_by_role("button", name="Close").click()
    page.locator(DIALOG).wait_for(state="detached")

    project = folder / "grow_pkg"
    readme = project / "README.md"
    readme.write_text(readme.read_text() + "\nNotes kept by the team.\n")  # the user's edit
    node = nbformat.read(path, as_version=4)  # the notebook moves on
    node.cells.insert(1, nbformat.v4.new_code_cell("def triple(v):\n    return v * 3"))
    nbformat.write(node, str(path))

    open_notebook(page, lab_server, f"{rel}/grow.ipynb")  # the lab shows the notebook as it is now
    page.locator(BUTTON).click()
    offer = dialog(page)
    offer.get_by_text("holds an earlier conversion of this notebook").wait_for()
    offer.get_by_role("button", name="Update package").click()
    done = page.locator(DIALOG).filter(has_text=re.compile(r"Package grow updated"))
    done.wait_for()
    text = done.inner_text()
    assert "Conflicts (0)" in text, text
    assert readme.read_text().endswith("Notes kept by the team.\n")
    assert "def triple(v):" in (project / "src" / "grow" / "core.py").read_text()
    assert "def triple" not in (project / ".nb2pkg" / "previous" / "src" / "grow"
                                / "core.py").read_text()
    done.get_by_role("button", name="Close").click()
