# DLP: the streaming content scanner run on plaintext before upload.
noinst_LIBRARIES += libdlp.a
libdlp_a_SOURCES = dlp/dlp.h dlp/dlp_int.h dlp/dlp_pattern.c \
	dlp/dlp_builtin.c dlp/dlp_engine.c dlp/dlp_stream.c dlp/dlp_hook.c
libdlp_a_CFLAGS = $(AM_CFLAGS) $(HS_CFLAGS)
