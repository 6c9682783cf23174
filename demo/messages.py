"""What a person sees when something goes wrong: a message, never a traceback."""
from __future__ import annotations

import functools
import logging

import gradio as gr

log = logging.getLogger("sd3.studio")


def shown_as_messages(event):
    """Wrap an event function: ``ValueError``/``FileNotFoundError`` become a ``gr.Error`` with their
    message (they name the cell, field or file at fault); anything else is logged with its
    traceback and shown as a short ``gr.Error``. The signature is kept (``functools.wraps``), so
    gradio still injects ``gr.Progress``."""
    @functools.wraps(event)
    def run(*args, **kwargs):
        try:
            return event(*args, **kwargs)
        except gr.Error:
            raise
        except (ValueError, FileNotFoundError) as error:
            raise gr.Error(str(error), print_exception=False) from None
        except Exception as error:  # the server keeps serving; the log has the traceback
            log.exception("event %s failed", event.__name__)
            raise gr.Error(f"Internal error in {event.__name__} ({type(error).__name__}); "
                           "it has been logged. Please try again or change the input.",
                           print_exception=False) from None
    return run
