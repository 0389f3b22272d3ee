"""The PyQt6 window that displays what the realtime workers publish (never imports torch)."""
