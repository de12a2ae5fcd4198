"""One reader per sender format: S3-style ``Records`` (AWS, MinIO, Ceph RGW), EventBridge, SeaweedFS's filer."""
