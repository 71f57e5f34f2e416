from tests.client.fake_ml import fake_ml  # noqa: F401  (fixture)
