"""The promoter's console: live sales dashboard, fans and their orders, audited refunds, CSV export."""
