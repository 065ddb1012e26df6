"""Identity (统一身份认证): departments, API clients, hub signing keys and access tokens."""
