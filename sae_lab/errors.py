"""The error every layer raises for a bad setting; the command line turns it into one sentence and exit 2."""


class ConfigError(ValueError):
    """A bad config value; its message is one sentence naming the key and what is allowed."""
