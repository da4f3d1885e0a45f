"""Stock-aware product recommendations: co-purchase rules, popularity, guardrails."""
