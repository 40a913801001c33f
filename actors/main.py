"""Entry module for `dramatiq actors.main`: each worker process imports it once."""

from actors.bootstrap import bootstrap
from service.config import Settings

_settings = Settings.from_env()
bootstrap(_settings, _settings.rabbitmq_url)
