"""Answer generation. The extractive answerer is the offline default that always works."""
