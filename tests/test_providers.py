"""Provider resolution: precedence, keys from the environment only, keys never shown."""

import pytest

from runner.errors import ProviderError, UntrustedEndpoint
from runner.providers.endpoints import ProviderOverride, Secret, resolve_endpoint
from runner.spec.objects import Provider

ENV = {"GROQ_API_KEY": "gsk_secret", "OPENAI_API_KEY": "sk_secret", "LOCAL_KEY": "local"}


def test_default_is_groq():
    endpoint = resolve_endpoint(None, ProviderOverride(), ENV)
    assert endpoint.name == "groq"
    assert endpoint.completions_url == "https://api.groq.com/openai/v1/chat/completions"
    assert endpoint.api_key is not None and endpoint.api_key.reveal() == "gsk_secret"


def test_spec_provider_is_used():
    endpoint = resolve_endpoint(Provider("openai"), ProviderOverride(), ENV)
    assert endpoint.base_url == "https://api.openai.com/v1"
    assert endpoint.api_key_env == "OPENAI_API_KEY"


def test_custom_base_url_from_spec_sends_its_key_only_once_the_user_chose_that_server():
    spec = Provider("local", "http://127.0.0.1:8000/v1", "LOCAL_KEY")
    with pytest.raises(UntrustedEndpoint, match=r"\$LOCAL_KEY to http://127.0.0.1:8000, a"):
        resolve_endpoint(spec, ProviderOverride(), ENV)
    chosen = ProviderOverride(base_url="http://127.0.0.1:8000", api_key_env="LOCAL_KEY")
    endpoint = resolve_endpoint(spec, chosen, ENV)
    assert endpoint.completions_url == "http://127.0.0.1:8000/chat/completions"
    assert endpoint.api_key is not None and endpoint.api_key.reveal() == "local"


def test_a_builtin_provider_on_the_users_base_url_sends_its_key_there():
    endpoint = resolve_endpoint(None, ProviderOverride("groq", "http://127.0.0.1:9/v1"), ENV)
    assert endpoint.api_key is not None and endpoint.api_key.reveal() == "gsk_secret"


def test_the_users_key_variable_may_go_to_a_builtin_server():
    endpoint = resolve_endpoint(Provider("openai"), ProviderOverride(api_key_env="LOCAL_KEY"), ENV)
    assert endpoint.api_key is not None and endpoint.api_key.reveal() == "local"


def test_nothing_sent_means_no_key_read():
    endpoint = resolve_endpoint(None, ProviderOverride(require_key=False), ENV)
    assert endpoint.api_key is None and endpoint.api_key_env == "GROQ_API_KEY"


def test_custom_endpoint_without_key():
    endpoint = resolve_endpoint(Provider("local", "http://localhost:11434/v1"), ProviderOverride())
    assert endpoint.api_key is None


def test_command_line_overrides_spec():
    endpoint = resolve_endpoint(Provider("openai"), ProviderOverride(name="offline"), ENV)
    assert endpoint.offline


def test_base_url_override_keeps_key_variable_given():
    override = ProviderOverride(base_url="http://127.0.0.1:9/v1", api_key_env="LOCAL_KEY")
    endpoint = resolve_endpoint(None, override, ENV)
    assert endpoint.name == "custom"
    assert endpoint.base_url == "http://127.0.0.1:9/v1"


def test_missing_key_names_the_variable():
    with pytest.raises(ProviderError, match="GROQ_API_KEY is not set"):
        resolve_endpoint(None, ProviderOverride(), {})


def test_unknown_provider_without_url():
    with pytest.raises(ProviderError, match="has no base URL"):
        resolve_endpoint(None, ProviderOverride(name="mystery"), ENV)


def test_secret_never_prints():
    secret = Secret("gsk_secret")
    assert "gsk_secret" not in repr(secret)
    assert "gsk_secret" not in str(secret)
    endpoint = resolve_endpoint(None, ProviderOverride(), ENV)
    assert "gsk_secret" not in repr(endpoint)
    assert "gsk_secret" not in str(endpoint.describe())
