"""The names `faultbed check` offers (formats, models), apart from the modules that implement them:
the command's --help needs them, and importing those modules costs start-up time."""

FORMATS = ("faultbed", "edn", "porcupine-etcd", "porcupine-kv")
STREAMED_FORMATS = ("faultbed", "porcupine-etcd")  # read by the checker itself (checkers/porcupine)
MODELS = ("register", "cas-register", "kv", "mutex", "multi-register", "fifo-queue")
