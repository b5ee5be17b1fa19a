"""Who may use a served vault: API tokens and their roles (``lensvault token``, ``lensvault serve``)."""
