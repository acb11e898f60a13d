"""Where data teams schedule retailflow: Dagster assets and an Airflow DAG (optional extras)."""
