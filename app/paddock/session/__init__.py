"""The session: the one way in (``runner``) that every entry point opens its session through, the
composer that writes the whole chain once (``composer``), the model it may use (``model_choice``),
its audit (``auditing``), its restore points (``undoing``: the folder's undo, audited, with the
sandbox's change guard), the egress questions it asks (``egress_questions``) and the host checks
(``doctor``). No Qt here.

The window's engine is ``paddock.desk``, undo's store and restore ``paddock.undo``, recurring
tasks ``paddock.schedule``.
"""
