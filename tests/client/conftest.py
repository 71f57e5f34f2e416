from tests.client.fake_ml import fake_ml_fixture  # noqa: F401  (fixture)
