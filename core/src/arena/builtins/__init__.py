"""Built-in plugins: registered through the same PluginManager as third-party ones."""
