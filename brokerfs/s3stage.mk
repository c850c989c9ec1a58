# The s3 backend's staging area and uploads (brokerfs/s3b_stage.h).
