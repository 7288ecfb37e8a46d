"""The assistant layer: the loop that talks to the model, the tools it calls (most of them in
the sandbox), skills and memory. Above the sandbox, below the session composer and the window."""
