"""The maintainers' Review tab: list flags, confirm or change their labels. Every call checks the secret."""

from __future__ import annotations

import hmac
from collections.abc import Callable

import gradio as gr

from flags.store import FlagStore, FlagStoreError
from fusion.labels import EMOTIONS

COLUMNS = ["id", "time", "text", "predicted", "corrected", "review"]


def build_review_tab(store: FlagStore, secret: str, restore: Callable[[], int] | None = None) -> None:
    """Call inside a `gr.Blocks`; its endpoints are private and refuse a wrong secret.

    `restore` (the flag dataset sync's) brings back flags this disk lacks before listing them.
    """

    def check(given: str | None) -> None:
        if not given or not hmac.compare_digest(given.encode(), secret.encode()):
            raise gr.Error("Wrong maintainer secret.", print_exception=False)

    def load(given: str):
        check(given)
        restored = 0
        if restore is not None:
            try:
                restored = restore()
            except Exception as err:  # noqa: BLE001 - the local queue is still worth showing
                gr.Warning(f"Could not load flags from the flag dataset ({type(err).__name__}); showing local ones.")
        records = store.records()
        rows = [
            [r.id, r.time, r.text[:80], r.predicted or "", r.corrected, (r.review or {}).get("label", "")]
            for r in reversed(records)
        ]
        ids = [r.id for r in reversed(records)]
        status = f"{len(records)} flag(s)." + (f" {restored} restored from the flag dataset." if restored else "")
        return rows, gr.Dropdown(choices=ids, value=ids[0] if ids else None), status

    def show(given: str, record_id: str | None):
        check(given)
        if not record_id:
            return None, "", None
        try:
            record = store.get(record_id)
        except KeyError as err:
            raise gr.Error(str(err.args[0]), print_exception=False) from None
        path = store.image_path(record)
        return (str(path) if path else None), record.text, record.label

    def save(given: str, record_id: str | None, label: str | None):
        check(given)
        if not record_id or not label:
            raise gr.Error("Pick a flag and a label first.", print_exception=False)
        try:
            record = store.review(record_id, label)
        except KeyError as err:
            raise gr.Error(str(err.args[0]), print_exception=False) from None
        except FlagStoreError as err:
            raise gr.Error(str(err), print_exception=False) from None
        rows, _, _ = load(given)
        return rows, f"Saved: {record.id} is **{record.review['label']}** ({record.review['status']})."

    with gr.Tab("Review", id="review"):
        gr.Markdown("Maintainers: confirm or change the label of flagged samples. Reviewed flags feed training.")
        with gr.Row():
            password = gr.Textbox(label="Maintainer secret", type="password", scale=3)
            load_button = gr.Button("Load flags", scale=1)
        status = gr.Markdown()
        table = gr.Dataframe(headers=COLUMNS, interactive=False, label="Flags (newest first)")
        with gr.Row():
            with gr.Column():
                chosen = gr.Dropdown(label="Flag", choices=[], interactive=True)
                label = gr.Radio(choices=list(EMOTIONS), label="Label")
                save_button = gr.Button("Save review", variant="primary")
            with gr.Column():
                image = gr.Image(label="Flagged image", interactive=False, type="filepath")
                text = gr.Textbox(label="Flagged text", interactive=False)
        load_button.click(load, [password], [table, chosen, status], api_visibility="private")
        chosen.change(show, [password, chosen], [image, text, label], api_visibility="private")
        save_button.click(save, [password, chosen, label], [table, status], api_visibility="private")
