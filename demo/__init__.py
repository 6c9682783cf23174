"""The Gradio studio: layout and adapters over sd3core; holds no model logic."""
