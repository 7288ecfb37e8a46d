package main

// Keep the guest's clock on the host's after the host paused the guest.
//
// A paused guest's clock stands still (under emulation its time-stamp counter stops with the
// CPU), so after a pause between turns its time lags the host's by the pause. The emulated RTC
// keeps the host's wall clock through a pause, to the second. Before each command the agent
// compares the two and, when they differ by more than clockSlack, steps its clock to the RTC's.

import (
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

const (
	rtcEpoch   = "/sys/class/rtc/rtc0/since_epoch"
	clockSlack = 2.0
)

// catchUp steps the clock to the RTC's when it is off by more than clockSlack; returns the step (s).
func catchUp() float64 {
	data, err := readSmall(rtcEpoch)
	if err != nil {
		return 0
	}
	rtc, err := strconv.ParseInt(strings.TrimSpace(string(data)), 10, 64)
	if err != nil {
		return 0
	}
	now := float64(time.Now().UnixNano()) / 1e9
	// The RTC reads whole seconds: the host's time is in [rtc, rtc + 1).
	if float64(rtc)-clockSlack <= now && now <= float64(rtc)+1+clockSlack {
		return 0
	}
	target := float64(rtc) + 0.5
	tv := unix.NsecToTimeval(int64(target * 1e9))
	if err := unix.Settimeofday(&tv); err != nil {
		logf("could not set the clock after a pause: %v", err)
		return 0
	}
	logf("clock stepped %+.1f s to the host's (the guest was paused)", target-now)
	return target - now
}
