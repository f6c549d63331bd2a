-- Proof of the key that seals this database's credentials
-- (`crate::store::sealing`): one row, a known text sealed at first start. An
-- instance whose CALLCARD_SECRET_KEY does not open it refuses to start.
CREATE TABLE sealing_key (
    id     BIGINT NOT NULL PRIMARY KEY,
    sealed TEXT   NOT NULL
);
