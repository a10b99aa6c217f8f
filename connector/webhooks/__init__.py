"""Webhooks as the Standard Webhooks specification describes them: the events the connector
announces (:mod:`.events`), their bodies (:mod:`.payloads`), how a request is signed
(:mod:`.signing`) and the endpoints that receive them (:mod:`.endpoints`)."""
