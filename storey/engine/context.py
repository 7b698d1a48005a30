"""Context: the configuration, secrets and tables a flow's steps share."""


class Context:
    """Context object that holds global configurations, secrets and tables for a flow."""

    def __init__(self, initial_secrets=None, initial_parameters=None, initial_tables=None):
        self._secrets = dict(initial_secrets or {})
        self._parameters = dict(initial_parameters or {})
        self._tables = dict(initial_tables or {})

    def get_param(self, key, default):
        return self._parameters.get(key, default)

    def set_param(self, key, value):
        self._parameters[key] = value

    def get_secret(self, key):
        return self._secrets.get(key)

    def set_secret(self, key, secret):
        self._secrets[key] = secret

    def get_table(self, key):
        return self._tables[key]

    def set_table(self, key, table):
        self._tables[key] = table
