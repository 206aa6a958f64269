"""The UI as a person sees it, in a real browser (Debian's headless chromium), and `make screenshots`."""
