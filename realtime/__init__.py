"""Live streams: sources, audio/video alignment, inference engines, ZeroMQ workers and sinks."""
