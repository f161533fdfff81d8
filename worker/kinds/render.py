"""The `render` job kind: one training sample rendered with a run's tokenizer and loss options.

In-process on the interactive worker, which keeps the last few tokenizers loaded: paging through a run's
samples (j/k on the sample viewer) costs a template rendering each, not a transformers import.
"""

from __future__ import annotations

import json
import threading
from functools import lru_cache
from typing import Any

from worker.kinds import register
from worker.runner import Context, JobKindSpec

_LOCK = threading.Lock()  # a fast tokenizer object is not safe to share across threads mid-call


@lru_cache(maxsize=4)
def load_tokenizer(source: str, chat_template: str = "") -> Any:
    """The run's tokenizer; with the run's own template file (model.chat_template_file) when it had one."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(source)
    if chat_template:
        from trainer.render import set_chat_template

        set_chat_template(tok, chat_template, "the run's chat template file")
    return tok


class Render(JobKindSpec):
    kind = "render"
    events_name = None
    uses_directory = False

    def run(self, ctx: Context) -> dict[str, Any]:
        from trainer.render import RenderError, RenderOptions, render_for_display

        params = json.loads(ctx.job.params_json)
        source = params["tokenizer"]
        try:
            with _LOCK:
                tokens = render_for_display(
                    load_tokenizer(source, params.get("chat_template", "")),
                    params["record"],
                    RenderOptions(**params["options"]),
                )
        except RenderError as exc:
            return {"error": f"the chat template cannot render this sample: {exc}"}
        except (OSError, ValueError) as exc:
            return {"error": f"the run's tokenizer ({source}) cannot be loaded: {exc}"}
        return {"tokens": tokens}


register(Render())
