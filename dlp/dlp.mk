# DLP: the streaming content scanner run on plaintext before upload.
