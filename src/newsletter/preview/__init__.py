"""The local preview: session, file watcher, server and screenshots."""
