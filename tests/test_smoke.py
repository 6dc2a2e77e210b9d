def test_schema_answers(client, db):
    response = client.get("/api/schema/")
    assert response.status_code == 200
