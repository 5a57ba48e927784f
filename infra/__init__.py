"""The serverless "before" stack: one construct per capability, wired by `stack.StreamQualityStack`."""
