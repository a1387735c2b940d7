"""arena-hello: the minimal third-party plugin shown in docs/writing-a-plugin.md."""
