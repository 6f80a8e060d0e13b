"""Audio encoders: PANNs, EfficientAT, the AudioSet tagger, and the model store."""
