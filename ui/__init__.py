"""Gradio UI parts of the Space (only this package and app.py import gradio)."""
