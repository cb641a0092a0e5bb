# SPDX-License-Identifier: MIT
# bash completion for evctl(1): commands, their options and the names of the
# objects in the namespace evctl would use (`evctl wait <TAB>`).
#
# Commands and options are read from evctl's own --help, so that they are
# those of the evctl installed; object names from `evctl list --raw
# --no-legend --output name,type`, run with EVD_NO_AUTOSTART=1 so that
# pressing TAB never starts a daemon.

# _evctl_options PROG [COMMAND...]: the option names COMMAND's --help lists.
_evctl_options() {
        "$@" --help 2>/dev/null | sed -n 's/^ \{1,\}\(-[^ ].*\)$/\1/p' |
                sed 's/   *.*//' | grep -o -- '--[a-z][a-z-]*'
}

# _evctl_commands PROG [WORD]: the commands (WORD given: WORD's subcommands).
_evctl_commands() {
        "$1" --help 2>/dev/null | awk -v word="${2-}" '
                /^Commands:/ { on = 1; next }
                /^$/ { on = 0 } # reads to the end: evctl is not cut short
                on { name = substr($0, 3, 13); sub(/ +$/, "", name)
                     split(name, w, " ")
                     if (word == "") { if (!(w[1] in seen)) print w[1]; seen[w[1]] }
                     else if (w[1] == word && w[2] != "") print w[2] }'
}

# _evctl_objects PROG TYPE [GLOBAL OPTIONS...]: the objects of TYPE (event,
# sem, lock, barrier; empty: all) in the namespace those options select.
_evctl_objects() {
        local prog=$1 type=$2 name t
        shift 2
        EVD_NO_AUTOSTART=1 "$prog" "$@" list --raw --no-legend --output name,type 2>/dev/null </dev/null |
                while read -r name t; do
                        [[ -z $type || $t == "$type" ]] && printf '%s\n' "$name"
                done
}

# _evctl_columns PROG: the columns of list --output.
_evctl_columns() {
        "$1" list --output help 2>/dev/null | awk 'NR > 1 { print substr($0, 4, 8) }' | tr -d ' '
}

_evctl() {
        local prog=${1:-evctl} cur=${COMP_WORDS[COMP_CWORD]} prev=
        ((COMP_CWORD > 0)) && prev=${COMP_WORDS[COMP_CWORD - 1]}
        [[ $prog == evctl ]] || prog=${prog/#\~/$HOME}
        local -a globals=() args=() cmd=()
        local i w dashdash=0 cmd_at=0

        # What was typed before the word being completed: the namespace
        # options, the command (one or two words), its non-option arguments.
        for ((i = 1; i < COMP_CWORD; i++)); do
                w=${COMP_WORDS[i]}
                if ((dashdash)); then
                        args+=("$w")
                        continue
                fi
                case $w in
                --runtime-dir)
                        globals+=("$w" "${COMP_WORDS[i + 1]}")
                        ((i++))
                        continue
                        ;;
                --runtime-dir=* | --system | --user)
                        globals+=("$w")
                        continue
                        ;;
                --) ((${#cmd[@]})) && dashdash=1 && continue ;;
                -t | --timeout | --progress | --value | --value-file | --count | --max | --initial | \
                        --owner | --parties | --output)
                        ((i++))
                        continue
                        ;;
                -*) continue ;;
                esac
                if ((${#cmd[@]} == 0)); then
                        cmd=("$w")
                        cmd_at=$i
                elif ((${#cmd[@]} == 1)) && [[ ${cmd[0]} == @(sem|lock|barrier) ]]; then
                        cmd+=("$w")
                else
                        args+=("$w")
                fi
                # sem run / lock run: the command to run starts after NAME.
                if [[ ${cmd[*]} == @(sem run|lock run) ]] && ((${#args[@]} == 1)); then
                        local at=$((i + 1))
                        [[ ${COMP_WORDS[at]} == -- ]] && ((at < COMP_CWORD)) && ((at++))
                        # Before the command's name, "-..." is one of ours.
                        ((at == COMP_CWORD)) && [[ $cur == -* ]] && break
                        if declare -F _command_offset >/dev/null; then
                                _command_offset $at
                        else
                                COMPREPLY=($(compgen -c -- "$cur"))
                        fi
                        return 0
                fi
        done

        # The value of an option.
        case $prev in
        --runtime-dir)
                COMPREPLY=($(compgen -d -- "$cur"))
                return 0
                ;;
        --value-file)
                COMPREPLY=($(compgen -f -- "$cur"))
                return 0
                ;;
        --output)
                local head= tail=$cur
                if [[ $cur == *,* ]]; then
                        head=${cur%,*},
                        tail=${cur##*,}
                fi
                [[ $head == "" && $tail == +* ]] && head=+ && tail=${tail#+}
                local cols
                cols="$(_evctl_columns "$prog") help"
                # Columns are matched in any case: offer them in the user's.
                [[ $tail == [a-z]* ]] && cols=${cols,,}
                COMPREPLY=($(compgen -P "$head" -W "$cols" -- "$tail"))
                compopt -o nospace 2>/dev/null
                return 0
                ;;
        -t | --timeout | --progress | --value | --count | --max | --initial | --owner | --parties)
                return 0
                ;;
        esac

        if ((${#cmd[@]} == 0)); then
                if [[ $cur == -* ]]; then
                        COMPREPLY=($(compgen -W "--runtime-dir --system --user --help --version" -- "$cur"))
                else
                        COMPREPLY=($(compgen -W "$(_evctl_commands "$prog")" -- "$cur"))
                fi
                return 0
        fi
        if ((${#cmd[@]} == 1)) && [[ ${cmd[0]} == @(sem|lock|barrier) ]]; then
                COMPREPLY=($(compgen -W "$(_evctl_commands "$prog" "${cmd[0]}")" -- "$cur"))
                return 0
        fi
        if [[ $cur == -* ]] && ((!dashdash)); then
                COMPREPLY=($(compgen -W "$(_evctl_options "$prog" "${cmd[@]}")" -- "$cur"))
                return 0
        fi

        # Object names: of the type the command works on, where it takes one.
        local type= many=0
        case ${cmd[*]} in
        set | clear | reset | is-set | fail) type=event ;;
        wait) type=event many=1 ;;
        show | delete) ;;
        watch) many=1 ;;
        sem\ *) type=sem ;;
        lock\ *) type=lock ;;
        barrier\ *) type=barrier ;;
        *) return 0 ;; # list, create, sem create: no existing name wanted
        esac
        [[ ${cmd[*]} == "sem create" ]] && return 0
        ((many || ${#args[@]} == 0)) || return 0
        COMPREPLY=($(compgen -W "$(_evctl_objects "$prog" "$type" "${globals[@]}")" -- "$cur"))
        return 0
}

complete -F _evctl evctl
